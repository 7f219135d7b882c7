"""Events of users who have not consented to personalisation (issue 21).

An input event with `consent: false` (clickstream, orders, ad-impressions; the
producer's consent manager stamps every event, as a bid request carries its consent
string) is served without anything personal and leaves nothing behind:

- an item view or click gets the trending items (strategy `non_personal`), the same
  list any user would get; other click types get nothing;
- an impression gets a neutral bid adjustment: the campaign's pacing factor alone
  (reason `no_consent`, no probabilities), the same for every such user;
- nothing is stored or learned: no profile, no session, no attribution window, no
  model update; a profile stored before consent was withdrawn is erased as by an
  erasure request (online_models/erasure.py).

Consent is not remembered (remembering it would store something about the user): an
event without the field, or with `consent: true`, is personalised as before.
"""

from __future__ import annotations

from typing import Any

from online_models.engine import PartitionEngine
from online_models.erasure import ErasureRequest, erase
from online_models.events import ITEM_EVENT_TYPES, AdImpression, ClickEvent
from online_models.outputs import (
    BidAdjustment,
    Output,
    Recommendation,
    RecommendedItem,
    origin_of,
    stable_id,
)
from online_models.state import UserState

NON_PERSONAL: Any = "non_personal"


def declined(ev: Any) -> bool:
    """True when the event says its user declined personalisation."""
    return getattr(ev, "consent", None) is False


def serve_without_consent(
    engine: PartitionEngine, source: str, ev: Any, state: UserState | None
) -> tuple[list[Output], dict[str, int] | None]:
    """The outputs for a declined event, and what was erased (None: nothing was
    stored about the user)."""
    erased = None
    if state is not None or ev.user_id in engine.activity:
        req = ErasureRequest(request_id=f"consent:{ev.event_id}", user_id=ev.user_id, ts=ev.ts)
        erased = erase(engine, ev.user_id, state, req).removed
    origin = origin_of(source, ev)
    knowledge = engine.knowledge
    outputs: list[Output] = []
    if isinstance(ev, ClickEvent) and ev.type in ITEM_EVENT_TYPES:
        top = knowledge.trending_items(engine.cfg.top_k + 1)
        items = [i for i in top if i != ev.item_id][: engine.cfg.top_k]
        if items:
            n = len(items)
            outputs.append(
                Recommendation(
                    event_id=stable_id("rec", origin.seed),
                    ts=ev.ts,
                    user_id=ev.user_id,
                    # Rank-based scores: trending carries no score meant for users.
                    items=[RecommendedItem(i, round((n - r) / n, 6)) for r, i in enumerate(items)],
                    strategy=NON_PERSONAL,
                    model_version=knowledge.version(),
                    source_event_id=origin.event_id,
                )
            )
    elif isinstance(ev, AdImpression):
        pacing = knowledge.pacing_factor(ev.campaign_id, ev.ts)
        outputs.append(
            BidAdjustment(
                event_id=stable_id("bid", origin.seed, ev.campaign_id),
                ts=ev.ts,
                user_id=ev.user_id,
                campaign_id=ev.campaign_id,
                multiplier=pacing,
                p_click=None,
                p_conversion=None,
                expected_revenue=None,
                expected_roas=None,
                pacing_factor=pacing,
                reason="no_consent",
                ttl_s=engine.cfg.bid_ttl_s,
                model_version=knowledge.version(),
                source_event_id=origin.event_id,
                shard=engine.partition,
                shards=engine.cfg.partitions,
            )
        )
    return outputs, erased
