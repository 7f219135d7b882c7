"""A partition engine's bidder: pricing one campaign for one user, the per-user bid
adjustments, their explanations and the campaign-wide pacing announcements. The
engine holds one (`PartitionEngine.bids`) and calls it while it processes an event."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from online_models.bidding import clip_multiplier
from online_models.config import EngineConfig
from online_models.events import AdImpression, Campaign
from online_models.features import feature_name, impression_features
from online_models.knowledge import SharedKnowledge
from online_models.knowledge_updates import BidValue, Update
from online_models.models import OnlineLogistic
from online_models.outputs import BidAdjustment, FeatureContribution, Origin, Output, stable_id
from online_models.state import UserState

TOP_FEATURES = 3  # feature contributions named in each bid adjustment


def _roas(value: float, cost: float) -> float | None:
    """Expected return on the campaign's mean cost; None when it is not a finite number
    (a mean cost of 5e-324 is a valid input and would make it inf).

    >>> _roas(2.0, 4.0), _roas(1.0, 5e-324), _roas(1.0, 0.0)
    (0.5, None, None)
    """
    if cost <= 0:
        return None
    roas = value / cost
    return round(roas, 6) if math.isfinite(roas) else None


class Bidder:
    """Bid adjustments of one partition's engine."""

    def __init__(
        self,
        cfg: EngineConfig,
        partition: int,
        knowledge_of: Callable[[], SharedKnowledge],
        campaign_of: Callable[[str], Campaign],
    ) -> None:
        self.cfg = cfg
        self.partition = partition
        # Getters: the runtime rewires an engine to a restored knowledge
        # (streams/runtime.py), and campaigns change under the engine.
        self.knowledge_of = knowledge_of
        self.campaign = campaign_of
        # Campaign -> the pacing factor this partition last announced (hysteresis).
        self.pacing_sent: dict[str, float] = {}

    def _price(
        self,
        p: Any,
        campaign: Campaign,
        placement: str,
        context: Mapping[str, Any],
        ts: int,
        names: dict[str, str] | None = None,
    ) -> tuple[float, float, float, float, float, bool, dict[str, float]]:
        """(p_click, p_conversion, revenue, value, value multiplier, gated, features) of
        one campaign for one user in one context, from the knowledge as it is now
        (`names` receives the readable names of the hashed features).

        The value multiplier is neutral (1.0, `gated`) while the click model is not
        trusted (`SharedKnowledge.trusted`): bids then follow pacing alone instead of
        an untrained prior. A conversion or revenue model not trusted yet is replaced
        by its observed mean, so the click model's ranking still counts. The campaign's
        `objective` says which of the three the value multiplies."""
        knowledge = self.knowledge_of()
        segment = knowledge.public_segment(p.segment)  # k-anonymous (issue 21)
        x = impression_features(
            p, campaign, placement, context, ts, self.cfg.hash_bits, names, segment
        )
        p_click, p_conv, revenue = knowledge.predict(x)
        if not knowledge.trusted("click"):
            return p_click, p_conv, revenue, 0.0, 1.0, True, x
        value = p_click
        if campaign.objective != "clicks":
            trusted = knowledge.trusted("conversion")
            value *= p_conv if trusted else knowledge.base_rate("conversion")
        if campaign.objective == "value":
            rev = revenue if knowledge.trusted("revenue") else knowledge.mean_revenue()
            value *= rev / campaign.target_roas
        if not math.isfinite(value) or value < 0:
            # Unreachable with decoded campaigns (bounded ROAS); kept so that no value
            # computed from a campaign built in code can reach a bid or an average.
            return p_click, p_conv, revenue, 0.0, 1.0, True, x
        average = knowledge.value_average(campaign.campaign_id)
        mult = clip_multiplier(value, value if average is None else average, campaign)
        return p_click, p_conv, revenue, value, mult, False, x

    def quote(self, state: UserState | None, ev: AdImpression) -> float:
        """The multiplier this engine would give the bid for `ev` right now (value part
        x pacing factor), without changing anything: what a bidder asking per request
        gets. The replay bids with it before it feeds the impression (docs/backtesting.md)."""
        campaign = self.campaign(ev.campaign_id)
        pacing = self.knowledge_of().pacing_factor(ev.campaign_id, ev.ts)
        profile = state.profile if state is not None else UserState.new(ev.user_id).profile
        mult = self._price(profile, campaign, ev.placement or "-", ev.context, ev.ts)[4]
        return round(mult * pacing, 6)

    def bid(
        self,
        state: UserState,
        ts: int,
        source_id: Origin,
        outputs: list[Output],
        updates: list[Update],
    ) -> None:
        p = state.profile
        knowledge = self.knowledge_of()
        kept_out = knowledge.models.gated()  # models the health gate keeps out of the value
        for campaign_id, (last_ts, placement, device, region) in sorted(state.campaigns.items()):
            if ts - int(last_ts) > self.cfg.campaign_active_ms:
                continue
            if not knowledge.holds_campaign(campaign_id):
                continue  # an unknown campaign forgotten since (bounded state)
            campaign = self.campaign(campaign_id)
            # A factor that moved without an impression of the campaign (a new day
            # after an exhausted one) is announced by the next event that re-prices it.
            self.announce_pacing(campaign, ts, source_id, outputs)
            context = {"device": device, "region": region}
            names: dict[str, str] = {}
            p_click, p_conv, revenue, value, mult, gated, x = self._price(
                p, campaign, str(placement), context, ts, names
            )
            if not gated:
                updates.append(BidValue(campaign_id, ts, value))
            pacing = knowledge.pacing_factor(campaign_id, ts)
            multiplier = round(mult * pacing, 6)
            previous = state.bids.get(campaign_id)
            if previous is not None and abs(multiplier - previous) <= self.cfg.bid_threshold * max(
                previous, 0.05
            ):
                continue
            state.bids[campaign_id] = multiplier
            cost = knowledge.mean_cost(campaign_id)
            reason = "model_gated" if gated else "new" if previous is None else "value_moved"
            outputs.append(
                BidAdjustment(
                    event_id=stable_id("bid", source_id.seed, campaign_id),
                    ts=ts,
                    user_id=p.user_id,
                    campaign_id=campaign_id,
                    multiplier=multiplier,
                    p_click=round(p_click, 6),
                    p_conversion=round(p_conv, 6),
                    expected_revenue=round(revenue, 4),
                    expected_roas=_roas(p_click * p_conv * revenue, cost),
                    pacing_factor=pacing,
                    reason=reason,
                    top_features=self._explain(x, names, kept_out, campaign),
                    gated=sorted(kept_out),
                    ttl_s=self.cfg.bid_ttl_s,
                    model_version=knowledge.version(),
                    source_event_id=source_id.event_id,
                    shard=self.partition,
                    shards=self.cfg.partitions,
                )
            )

    def _explain(
        self,
        x: dict[str, float],
        names: dict[str, str],
        gated: Mapping[str, str],
        campaign: Campaign,
    ) -> list[FeatureContribution]:
        """The largest feature contributions (weight x value, in log-odds) of the models
        whose predictions this bid used."""
        models = self.knowledge_of().models
        used: list[tuple[str, OnlineLogistic]] = [("click", models.click)]
        if campaign.objective != "clicks":
            used.append(("conversion", models.conversion))
        found = [
            (abs(c), name, key, c)
            for name, model in used
            if name not in gated
            for key, c in model.contributions(x)[:TOP_FEATURES]
        ]
        found.sort(key=lambda t: (-t[0], t[1], t[2]))
        return [
            FeatureContribution(name, feature_name(key, names), round(c, 4))
            for _, name, key, c in found[:TOP_FEATURES]
        ]

    def announce_pacing(
        self, campaign: Campaign, ts: int, source_id: Origin, outputs: list[Output]
    ) -> None:
        """Emit the campaign-wide pacing factor when it moved since this partition last
        announced it (hysteresis). Every partition announces the same campaign-wide
        factor; `shard` only says which partition sent it."""
        cid = campaign.campaign_id
        knowledge = self.knowledge_of()
        factor = knowledge.pacing_factor(cid, ts)
        sent = self.pacing_sent.get(cid, 1.0)
        if abs(factor - sent) <= self.cfg.pacing_threshold * max(sent, 0.1):
            return
        self.pacing_sent[cid] = factor
        if len(self.pacing_sent) > self.cfg.max_campaigns + self.cfg.max_unknown_campaigns:
            held = knowledge.holds_campaign
            self.pacing_sent = {c: f for c, f in self.pacing_sent.items() if held(c)}
        outputs.append(
            BidAdjustment(
                event_id=stable_id("pace", source_id.seed, cid),
                ts=ts,
                user_id=None,
                campaign_id=cid,
                multiplier=factor,
                p_click=None,
                p_conversion=None,
                expected_revenue=None,
                expected_roas=None,
                pacing_factor=factor,
                reason="budget_exhausted" if factor == 0 else "pacing",
                ttl_s=self.cfg.bid_ttl_s,
                model_version=knowledge.version(),
                source_event_id=source_id.event_id,
                shard=self.partition,
                shards=self.cfg.partitions,
            )
        )
