"""One partition's worth of domain logic: the single code path that the live Faust
agents and the offline replay both run.

State is passed in and returned: the caller owns per-user state (a Faust table live,
a dict offline) and hands it over with each event. The engine owns the rest of the
*user side* of its partition (pending attribution windows, user expiry, which pacing
factors it has announced) and reads the *shared knowledge* (`online_models.knowledge`:
item graph, popularity, models, campaign pacing), which several engines can share.
Each event's compact knowledge updates (`Result.updates`) are handed to
`knowledge.submit`, which makes them visible after `knowledge_delay_ms` of event
time; reads never see updates of the event being processed.

>>> from online_models.events import ClickEvent
>>> eng = PartitionEngine(EngineConfig(partitions=1), partition=0)
>>> ev = ClickEvent(event_id="e1", ts=1_700_000_000_000, user_id="u1", type="view",
...                 item_id="i1", category="shoes")
>>> result = eng.process("clickstream", ev, None, offset=0)
>>> result.state.profile.totals, result.duplicate, result.updates[0]
({'view': 1}, False, ItemSeen(item='i1', category='shoes', ts=1700000000000, weight=1.0))
>>> eng.process("clickstream", ev, result.state, offset=0).duplicate   # redelivery
True
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from typing import Any

from online_models.attribution import Attribution, Label, Pending
from online_models.bidder import Bidder
from online_models.config import EngineConfig
from online_models.events import AdImpression, Campaign, ClickEvent, InputEvent, OrderEvent
from online_models.features import impression_features
from online_models.knowledge import SharedKnowledge
from online_models.knowledge_updates import (
    BuyerRfm,
    Example,
    ItemSeen,
    Revisit,
    SegmentMove,
    SessionClick,
    Spend,
    Transition,
    Update,
)
from online_models.outputs import (
    Origin,
    Output,
    Recommendation,
    RecommendedItem,
    origin_of,
    stable_id,
)
from online_models.profile import apply_click, apply_impression, apply_order
from online_models.sessions import current_session, session_key
from online_models.snapshot import Restorable
from online_models.state import UserState, already_applied, record_applied

REC_TRIGGERS = frozenset({"view", "add_to_cart"})
# Events that move a bid's inputs enough to re-price; views alone barely do, and
# re-pricing on each would dominate the cost of the pipeline.
BID_TRIGGERS = frozenset({"ad_click", "add_to_cart", "click", "wishlist"})
ITEM_WEIGHTS = {"view": 1.0, "click": 1.0, "wishlist": 2.0, "add_to_cart": 3.0}
ORDER_ITEM_WEIGHT = 5.0
REC_TIMES_KEPT = 4
# Why the engine refuses an event outright (`Result.refused`, the dead-letter reason).
REFUSALS = {
    "future_timestamp": "event time too far ahead of the partition's time and the clock",
    "unknown_campaign": "campaign not on the campaigns topic, and max_unknown_campaigns"
    " unknown ones are held already",
}


class Result:
    """What one event did: the user's new state, outputs to send, users to forget, and
    the knowledge updates it produced (already handed to the knowledge).

    `refused` names why an event was not applied at all (then nothing changed)."""

    __slots__ = ("duplicate", "expired", "labels", "outputs", "refused", "state", "updates")

    def __init__(
        self,
        state: UserState,
        outputs: list[Output],
        expired: list[str],
        labels: int = 0,
        duplicate: bool = False,
        refused: str | None = None,
        updates: list[Update] | None = None,
    ) -> None:
        self.state = state
        self.outputs = outputs
        self.expired = expired
        self.labels = labels
        self.duplicate = duplicate
        self.refused = refused
        self.updates = updates if updates is not None else []


class PartitionEngine(Restorable):
    """The user side of one partition.

    Parameters
    ----------
    cfg
        Hyperparameters.
    partition
        The input partition whose users this engine serves.
    campaigns
        Campaign settings by id, shared with the caller (it keeps them current).
    knowledge
        The shared side it reads and feeds; without one the engine gets a knowledge
        of its own (tests, tools).
    now_getter
        Optional injected clock (epoch ms). Used for one thing only: an event more than
        `cfg.max_future_skew_ms` ahead of both the partition's watermark and this clock
        is refused as `future_timestamp`. Live workers pass the wall clock, so a
        watermark left stale by an outage never refuses current events; replays pass
        none (event time alone), and then a run of `cfg.future_quorum` consecutive
        refusals is taken as a gap in the history, not as bad records, and accepted.
    """

    def __init__(
        self,
        cfg: EngineConfig,
        partition: int,
        campaigns: MutableMapping[str, Campaign] | None = None,
        knowledge: SharedKnowledge | None = None,
        now_getter: Callable[[], int] | None = None,
    ) -> None:
        self.cfg = cfg
        self.now_getter = now_getter
        self._future_run = 0
        self.partition = partition
        self.campaigns: MutableMapping[str, Campaign] = campaigns if campaigns is not None else {}
        self.owns_knowledge = knowledge is None
        self.knowledge = (
            knowledge if knowledge is not None else SharedKnowledge(cfg, self.campaigns)
        )
        self.attribution = Attribution(
            cfg.click_window_ms,
            cfg.conversion_window_ms,
            cfg.allowed_lateness_ms,
            cfg.max_pending_impressions,
            cfg.max_pending_clicks_per_user,
            on_click=self._clicked,
        )
        self._opened: list[Pending] = []  # clicks that opened a conversion window now
        self.bids = Bidder(cfg, partition, lambda: self.knowledge, self.campaign)
        self.pacing_checked = 0  # the knowledge's pacer tick last checked for announcements
        self.activity: OrderedDict[str, int] = OrderedDict()
        self.events = 0

    # Shortcuts to the shared side (what callers and tests inspect).
    @property
    def models(self) -> Any:
        return self.knowledge.models

    @property
    def recommender(self) -> Any:
        return self.knowledge.recommender

    @property
    def pacer(self) -> Any:
        return self.knowledge.pacer

    @property
    def values(self) -> Any:
        return self.knowledge.values

    def campaign(self, campaign_id: str) -> Campaign:
        known = self.campaigns.get(campaign_id)
        return known if known is not None else Campaign(campaign_id=campaign_id)

    def quote(self, state: UserState | None, ev: AdImpression) -> float:
        """The bid multiplier for `ev` right now, changing nothing (`Bidder.quote`)."""
        return self.bids.quote(state, ev)

    # The one entry point -------------------------------------------------------
    def process(
        self,
        source: str,
        ev: InputEvent,
        state: UserState | None,
        offset: int | None = None,
        applied_as: str | None = None,
    ) -> Result:
        """Apply one input event; `offset` (live: the Kafka offset) makes it idempotent,
        recorded under `source` or, for a repartitioned copy, `applied_as` (the
        original's stream and partition, `offset` then being the original's)."""
        user = ev.user_id
        if self._from_future(ev.ts):
            return Result(state or UserState.new(user), [], [], refused="future_timestamp")
        if isinstance(ev, AdImpression) and not self.knowledge.admits(ev.campaign_id, ev.ts):
            # Bounded state under hostile input: a campaign id is admitted only when
            # known from the campaigns topic or while few unknown ones are held.
            return Result(state or UserState.new(user), [], [], refused="unknown_campaign")
        if state is None:
            state = UserState.new(user)
        elif offset is not None and already_applied(state, applied_as or source, offset):
            return Result(state, [], [], duplicate=True)
        self.events += 1
        knowledge = self.knowledge
        knowledge.advance(ev.ts)
        self.attribution.observe(ev.ts)
        outputs: list[Output] = []
        updates: list[Update] = []
        source_id = origin_of(source, ev)
        reprice = True
        if isinstance(ev, ClickEvent):
            labels = self._click(ev, state, updates)
            if ev.type in REC_TRIGGERS:
                self._recommend(state, ev.ts, source_id, outputs, ev.item_id)
            reprice = ev.type in BID_TRIGGERS
        elif isinstance(ev, OrderEvent):
            labels = self._order(ev, state, updates)
            if ev.status == "placed":
                self._recommend(state, ev.ts, source_id, outputs, None)
        else:
            labels = self._impression(ev, state, source_id, outputs, updates)
        labels.extend(self.attribution.expire())
        if self._opened:  # each click's fake negative, as soon as the click is known
            updates.extend(
                Example("clicked", False, c.x, c.campaign_id, ev.ts) for c in self._opened
            )
            self._opened.clear()
        # Stamped with this event's time, when the label became known: a label resolves
        # only once the watermark passes its window, and the delay counts from then.
        updates.extend(
            Example(lb.kind, lb.y, lb.x, lb.campaign_id, ev.ts, lb.revenue, lb.p, lb.base)
            for lb in labels
        )
        if reprice and state.campaigns:
            self.bids.bid(state, ev.ts, source_id, outputs, updates)
        self._announce_replanned(ev.ts, source_id, outputs)
        if offset is not None:
            record_applied(state, applied_as or source, offset)
        self.activity[user] = max(ev.ts, self.activity.pop(user, 0))
        knowledge.submit(updates, ev.ts)
        return Result(state, outputs, self._expired(), len(labels), updates=updates)

    def _announce_replanned(self, ts: int, source_id: Origin, outputs: list[Output]) -> None:
        """After each re-plan of the pacer without spend (once a minute of event time),
        announce every campaign's factor that moved. A campaign bidding too low to win
        gets no impressions, and its users stop re-pricing it after
        `campaign_active_ms`: without this, an ad server that forwards only the
        impressions it won would never hear that the factor rose, and the campaign
        would stay frozen (make run, day 2: c2 and c3 spent nothing all morning)."""
        tick = self.knowledge.pacer_tick
        if tick == self.pacing_checked:
            return
        self.pacing_checked = tick
        for campaign_id in sorted(self.knowledge.pacer.campaigns):
            self.bids.announce_pacing(self.campaign(campaign_id), ts, source_id, outputs)

    def _from_future(self, ts: int) -> bool:
        """True for an event too far ahead of the partition's time to be believed: it
        would drag the watermark forward and close every attribution window at once."""
        reference = self.attribution.max_ts
        clock = self.now_getter
        if clock is not None:
            reference = max(reference, clock())
        if not reference or ts <= reference + self.cfg.max_future_skew_ms:
            self._future_run = 0
            return False
        self._future_run += 1
        if clock is None and self._future_run > self.cfg.future_quorum:
            self._future_run = 0  # every recent event is "ahead": the history jumped
            return False
        return True

    def _clicked(self, click: Pending) -> None:
        """A click opened a conversion window: remember the conversion prediction made
        now (its final label is scored against it) and emit its fake negative."""
        models = self.knowledge.models
        click.p = models.conversion.p_one(click.x)
        click.base = models.base_rates()[1]
        self._opened.append(click)

    # Per event type -------------------------------------------------------------
    def _click(self, ev: ClickEvent, state: UserState, updates: list[Update]) -> list[Label]:
        p = state.profile
        item = ev.item_id
        sequenced = item is not None and ev.type in ITEM_WEIGHTS
        if item is not None and sequenced:
            cfg = self.cfg
            session = current_session(p, ev.ts, cfg)
            updates.append(ItemSeen(item, ev.category, ev.ts, ITEM_WEIGHTS[ev.type]))
            n = len(session)
            lookback = max(cfg.covis_lookback, cfg.sr_lookback)
            # Ordered, repeats included (prev == item): sequential rules learn them;
            # co-visitation skips them.
            updates.extend(
                Transition(prev, item, ev.ts, n - k)
                for k, prev in enumerate(session[-lookback:], max(0, n - lookback))
            )
            updates.append(Revisit(n - session.index(item) if item in session else 0, ev.ts))
        apply_click(p, ev, self.cfg)
        if item is not None and sequenced:
            updates.append(SessionClick(session_key(p), item, ev.ts))
        if ev.type == "ad_click" and ev.impression_id is not None:
            return self.attribution.click(ev.user_id, ev.impression_id, ev.ts)
        return []

    def _order(self, ev: OrderEvent, state: UserState, updates: list[Update]) -> list[Label]:
        p = state.profile
        apply_order(p, ev, self.cfg)
        if ev.status != "placed":
            return []
        for item in ev.items:
            updates.append(ItemSeen(item.item_id, item.category, ev.ts, ORDER_ITEM_WEIGHT))
        rfm = p.rfm(ev.ts)
        old, p.segment = p.segment, self.knowledge.segment(rfm)
        updates.append(BuyerRfm(rfm["r"], rfm["f"], rfm["m"], ev.ts))
        if old != p.segment:
            updates.append(SegmentMove(old, p.segment, ev.ts))
        return self.attribution.order(ev.user_id, ev.ts, float(ev.total or 0.0))

    def _impression(
        self,
        ev: AdImpression,
        state: UserState,
        source_id: Origin,
        outputs: list[Output],
        updates: list[Update],
    ) -> list[Label]:
        p = state.profile
        campaign = self.campaign(ev.campaign_id)
        x = impression_features(
            p, campaign, ev.placement, ev.context, ev.ts, self.cfg.hash_bits,
            segment=self.knowledge.public_segment(p.segment),
        )  # fmt: skip
        apply_impression(p, ev, self.cfg)
        state.campaigns[ev.campaign_id] = [
            ev.ts,
            ev.placement or "-",
            str(ev.context.get("device", "-")),
            str(ev.context.get("region", "-")),
        ]
        if len(state.campaigns) > self.cfg.max_user_campaigns:
            oldest = min(state.campaigns, key=lambda c: (int(state.campaigns[c][0]), c))
            del state.campaigns[oldest]
            state.bids.pop(oldest, None)
        updates.append(Spend(ev.campaign_id, ev.ts, ev.cost))
        self.bids.announce_pacing(campaign, ev.ts, source_id, outputs)
        return self.attribution.add_impression(
            ev.impression_id, ev.user_id, ev.campaign_id, ev.ts, x, ev.cost
        )

    # Outputs --------------------------------------------------------------------
    def recommend_now(
        self, state: UserState, ts: int, current: str | None
    ) -> tuple[list[RecommendedItem], str]:
        """The list this user would be served at `ts` (no rate limit, no output)."""
        p = state.profile
        cfg = self.cfg
        exclude: set[str] = set()
        if p.purchased:
            since = ts - cfg.exclude_purchased_ms
            exclude.update(str(i) for i, t in p.purchased if int(t) >= since)
        if current is not None and cfg.rec_allow_seen != 1:
            exclude.add(current)
        session = current_session(p, ts, cfg)
        return self.knowledge.recommend(
            session, session_key(p), ts, p.categories, exclude, cfg.top_k
        )

    def _recommend(
        self,
        state: UserState,
        ts: int,
        source_id: Origin,
        outputs: list[Output],
        current: str | None,
    ) -> None:
        times = state.rec_times
        if any(ts - self.cfg.rec_interval_ms < t <= ts for t in times) or (
            len(times) == REC_TIMES_KEPT and ts < times[0]
        ):
            return
        items, strategy = self.recommend_now(state, ts, current)
        if not items:
            return
        bisect.insort(state.rec_times, ts)
        del state.rec_times[:-REC_TIMES_KEPT]
        outputs.append(
            Recommendation(
                event_id=stable_id("rec", source_id.seed),
                ts=ts,
                user_id=state.profile.user_id,
                items=items,
                strategy=strategy,
                model_version=self.knowledge.version(),
                source_event_id=source_id.event_id,
            )
        )

    def _expired(self) -> list[str]:
        """Users idle for longer than the profile TTL, in event time."""
        cutoff = self.attribution.watermark - self.cfg.profile_ttl_ms
        out = []
        while self.activity:
            user, last = next(iter(self.activity.items()))
            if last >= cutoff:
                break
            del self.activity[user]
            out.append(user)
        return out

    def touch(self, user_id: str, last_seen: int) -> None:
        """Register a user restored from the table, so that TTL expiry covers it."""
        self.activity[user_id] = last_seen
        self.activity.move_to_end(user_id)

    # Snapshots ------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """The partition's user side, plus the knowledge it reads (shared or not): a
        partition snapshot carries the knowledge as of that moment."""
        return {
            "partition": self.partition,
            "events": self.events,
            "attribution": self.attribution.to_state(),
            "pacing_sent": self.bids.pacing_sent,
            "pacing_checked": self.pacing_checked,
            "knowledge": self.knowledge.to_state(),
        }

    def _restore(self, s: dict[str, Any]) -> None:
        """`from_state`: the user side, and the knowledge when this engine owns it (built
        without a `knowledge`); a shared knowledge is its owner's to restore
        (`SharedKnowledge.from_state`)."""
        self.restore_user_side(s)
        if self.owns_knowledge:
            self.knowledge._restore(s["knowledge"])

    def restore_user_side(self, s: dict[str, Any]) -> None:
        """Restore the user side of a `to_state` value into this engine, in place,
        leaving its knowledge alone: the runtime registers each partition's engine, wired
        to the worker's shared knowledge, before its snapshot is read, and restores the
        shared knowledge once from the newest of them. `from_state` builds on this."""
        self.events = int(s["events"])
        self.attribution._restore(s["attribution"])
        self.bids.pacing_sent = {k: float(v) for k, v in s["pacing_sent"].items()}
        self.pacing_checked = int(s.get("pacing_checked", 0))
