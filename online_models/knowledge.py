"""Shared knowledge: what the service learns from the events of every partition.

The domain keeps two kinds of state. **User state** (profiles, the users' pending
attribution, their bids) is keyed by user and partitioned like the inputs; a
`PartitionEngine` owns it. **Shared knowledge** (item transitions and co-visitation,
item and category popularity, the click / conversion / revenue models and their
progressive scores, the buyer segments, campaign spend and value averages) is
learned from every partition and read by every partition; this module holds it.

The user side never writes here directly: each event becomes compact *updates* (plain
msgspec structs, online_models/knowledge_updates.py) that it hands to `submit`. The
knowledge buffers them and applies them, in event-time order, once its event-time
clock has passed their time plus `knowledge_delay_ms`: live, updates from other
workers will arrive late, and the replay models that lateness with the same setting.
`apply` applies updates at once (what a consumer of a future internal updates topic
would call).

Updates are designed to travel between processes: each is a tagged JSON array
(`encode_updates` / `decode_updates`, a version number in front, never pickle),
carries its own event time, and is small (item ids, a feature dict, a few numbers).
Counts (popularity, co-visitation, spend) are sums of forward-decayed weights, so
they do not depend on the order updates arrive in; model training (SGD) does, as it
does for any online learner.

>>> from online_models.config import EngineConfig
>>> k = SharedKnowledge(EngineConfig(knowledge_delay_ms=1000))
>>> k.submit([ItemSeen("a", "cat", 5_000, 1.0), Transition("a", "b", 5_000, 1)], now=5_000)
>>> k.trending_items(5), len(k.pending)   # not visible yet: 1 s of event time late
([], 2)
>>> k.advance(6_000); k.trending_items(5), len(k.pending)
(['a'], 0)
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import msgspec

from online_models.bidding import Pacer, ValueAverage
from online_models.blend import SessionRecommender
from online_models.config import EngineConfig
from online_models.events import Campaign
from online_models.knowledge_updates import (
    BidValue,
    Example,
    ItemSeen,
    Revisit,
    SegmentMove,
    SessionClick,
    Spend,
    Transition,
    Update,
)
from online_models.learner import Models
from online_models.outputs import RecommendedItem
from online_models.segment_counts import SegmentCounts
from online_models.segments import Segmenter
from online_models.snapshot import Restorable

PACER_TICK_MS = 60_000


class SharedKnowledge(Restorable):
    """Learned from every partition, read by every partition (see module docstring)."""

    def __init__(
        self, cfg: EngineConfig, campaigns: MutableMapping[str, Campaign] | None = None
    ) -> None:
        self.cfg = cfg
        self.delay_ms = cfg.knowledge_delay_ms
        # Campaign settings by id (from the campaigns topic: `set_campaign`), shared
        # with the engines; `unknown` holds campaigns seen only in impressions (their
        # latest impression time), at most cfg.max_unknown_campaigns.
        self.campaigns: MutableMapping[str, Campaign] = campaigns if campaigns is not None else {}
        self.unknown: dict[str, int] = {}
        self.value_meaning: dict[str, tuple[float, str, str | None]] = {}
        self.recs = SessionRecommender(cfg)
        self.recommender = self.recs.base  # popularity and co-visitation
        self.models = Models(
            cfg.learning_rate,
            cfg.l2,
            cfg.click_prior,
            cfg.conversion_prior,
            horizon=cfg.base_rate_horizon,
            fake_negatives=bool(cfg.fake_negatives),
            gate=bool(cfg.model_gate),
            gate_window=cfg.gate_window,
            gate_min_positives=cfg.gate_min_positives,
            gate_low=cfg.gate_calibration_low,
            gate_high=cfg.gate_calibration_high,
        )
        self.segmenter = Segmenter(cfg.segments)
        self.segment_counts = SegmentCounts()
        # Campaign-wide: the whole daily budget against the spend of every partition.
        self.pacer = Pacer(
            cfg.pacing_gain,
            cfg.pacing_min,
            cfg.pacing_max,
            cfg.pacing_integral,
            cfg.pacing_window_ms,
            bool(cfg.pacing_traffic_time),
            cfg.pacing_traffic_decay,
            settle=cfg.pacing_settle,
            settle_within=cfg.pacing_settle_within,
        )
        self.values = ValueAverage(cfg.value_average_alpha)
        self.costs = ValueAverage()
        self.clock = 0  # latest event time seen (by `advance`)
        self.pacer_tick = 0  # event time pacing was last re-planned without spend
        self.applied = 0  # updates applied so far
        self.seq = 0
        # (visible at, seq, update): a heap, so updates apply in event-time order.
        self.pending: list[tuple[int, int, Update]] = []

    # Writing ------------------------------------------------------------------------
    def submit(self, updates: Iterable[Update], now: int) -> None:
        """Buffer updates; they apply once the clock passes their time + the delay."""
        delay = self.delay_ms
        for u in updates:
            self.seq += 1
            heapq.heappush(self.pending, (u.ts + delay, self.seq, u))
        self.advance(now)

    def advance(self, now: int) -> None:
        """Move the event-time clock to `now` (if later) and apply what is due; once a
        minute of event time, re-plan every campaign's pacing (no spend for a minute is
        news too: a campaign bidding too low to win anything must not wait for a win)."""
        if now > self.clock:
            self.clock = now
        pending = self.pending
        if pending and pending[0][0] <= self.clock:
            due = []
            while pending and pending[0][0] <= self.clock:
                due.append(heapq.heappop(pending)[2])
            self.apply(due)
        if self.clock - self.pacer_tick >= PACER_TICK_MS:
            self.pacer_tick = self.clock
            self._forget_idle_unknown()
            for cid in sorted(self.pacer.campaigns):
                self.pacer.spend(self.campaign(cid), 0.0, self.clock, request=False)

    def apply(self, updates: Iterable[Update]) -> None:
        """Learn from updates now, in the order given."""
        rec, models = self.recommender, self.models
        rules, index, revisits = self.recs.rules, self.recs.index, self.recs.revisits
        for u in updates:
            self.applied += 1
            if isinstance(u, Transition):
                rules.observe(u.prev, u.item, u.distance)
                if u.prev != u.item:
                    rec.observe_pair((u.prev,), u.item, u.ts)
            elif isinstance(u, SessionClick):
                index.observe(u.session, u.item, u.ts)
            elif isinstance(u, Revisit):
                revisits.observe(u.distance)
            elif isinstance(u, ItemSeen):
                rec.observe_item(u.item, u.category, u.ts, u.weight)
                self.pacer.activity(u.ts)
            elif isinstance(u, Example):
                models.learn_one(u.kind, u.x, u.y, u.revenue, u.p, u.base)
            elif isinstance(u, Spend):
                if u.cost > 0:  # an impression not won (replay) costs nothing, says no price
                    self.costs.update(u.campaign_id, u.cost)
                self.pacer.spend(self.campaign(u.campaign_id), u.cost, u.ts)
            elif isinstance(u, BidValue):
                self.values.update(u.campaign_id, u.value)
            elif isinstance(u, SegmentMove):
                self.segment_counts.move(u.old, u.new)
            else:
                self.segmenter.assign({"r": u.r, "f": u.f, "m": u.m})

    # Campaigns ----------------------------------------------------------------------
    def set_campaign(self, campaign: Campaign) -> bool:
        """Take a campaign's settings (a record of the campaigns topic); False when
        `max_campaigns` are known already and this one is new (refused, bounded).
        A change of what its value means (ROAS target, objective, category) starts its
        running value average afresh, so the corrected campaign bids on its new scale
        at once instead of after thousands of impressions."""
        cid = campaign.campaign_id
        if cid not in self.campaigns and len(self.campaigns) >= self.cfg.max_campaigns:
            return False
        # Compared with what this knowledge's average was learned under (the mapping
        # may be shared by several knowledges, so not with the mapping's old entry).
        meaning = (campaign.target_roas, campaign.objective, campaign.category)
        if self.value_meaning.get(cid, meaning) != meaning:
            self.values.forget(cid)
        self.value_meaning[cid] = meaning
        self.unknown.pop(cid, None)
        self.campaigns[cid] = campaign
        return True

    def remove_campaign(self, campaign_id: str) -> None:
        """A campaign deleted (a tombstone): defaults apply again, as to an unknown one."""
        self.value_meaning.pop(campaign_id, None)
        if self.campaigns.pop(campaign_id, None) is None:
            return
        if len(self.unknown) < self.cfg.max_unknown_campaigns:
            self.unknown[campaign_id] = self.clock  # its pacing goes on, as an unknown one
        else:
            self._forget(campaign_id)

    def admits(self, campaign_id: str, ts: int) -> bool:
        """Whether an impression of `campaign_id` may be applied: a known campaign, or an
        unknown one while fewer than `max_unknown_campaigns` are held (it is then held:
        its pacing and averages count against that bound)."""
        if campaign_id in self.campaigns:
            return True
        unknown = self.unknown
        last = unknown.get(campaign_id)
        if last is None and len(unknown) >= self.cfg.max_unknown_campaigns:
            return False
        unknown[campaign_id] = ts if last is None else max(last, ts)
        return True

    def _forget_idle_unknown(self) -> None:
        cutoff = self.clock - self.cfg.unknown_campaign_idle_ms
        for cid in [c for c, last in self.unknown.items() if last < cutoff]:
            del self.unknown[cid]
            self._forget(cid)

    def _forget(self, campaign_id: str) -> None:
        self.pacer.campaigns.pop(campaign_id, None)
        self.values.forget(campaign_id)
        self.costs.forget(campaign_id)

    def holds_campaign(self, campaign_id: str) -> bool:
        return campaign_id in self.campaigns or campaign_id in self.unknown

    # Reading ------------------------------------------------------------------------
    def campaign(self, campaign_id: str) -> Campaign:
        known = self.campaigns.get(campaign_id)
        return known if known is not None else Campaign(campaign_id=campaign_id)

    def recommend(
        self,
        session: list[str],
        key: str,
        ts: int,
        affinity: Mapping[str, float],
        exclude: set[str],
        k: int,
    ) -> tuple[list[RecommendedItem], str]:
        """Top-k for a session (distinct items, oldest first) at `ts`: `blend`."""
        return self.recs.recommend(session, key, ts, affinity, exclude, k)

    def trending_items(self, k: int) -> list[str]:
        return self.recommender.trending_items(k)

    def predict(self, x: dict[str, float]) -> tuple[float, float, float]:
        """(p_click, p_conversion given click, expected revenue given conversion)."""
        return self.models.predict(x)

    def segment(self, rfm: dict[str, float]) -> str:
        return self.segmenter.label(rfm)

    def public_segment(self, label: str) -> str:
        """`label` as it may be published or used: k-anonymous (segment_counts.py)."""
        return self.segment_counts.public(label, self.cfg.segment_min_users)

    def pacing_factor(self, campaign_id: str, ts: int | None = None) -> float:
        return self.pacer.factor(campaign_id, ts)

    def pacing_state(self, campaign_id: str, ts: int) -> dict[str, float]:
        """Today's spend, budget, even-spend target and factor of a campaign."""
        return self.pacer.state(self.campaign(campaign_id), ts)

    def trusted(self, kind: str) -> bool:
        """Whether a model's predictions may move bids. Click and conversion: while the
        health gate (`Models.gated`, online_models/learner.py) does not keep them out,
        i.e. over the recent window they beat the running base-rate constant and are
        calibrated (Open Bandit's click model never is). Revenue: once it has learned
        `value_min_positives` orders."""
        if kind == "revenue":
            return self.models.revenue.n_learned >= self.cfg.value_min_positives
        return kind not in self.models.gated()

    def base_rate(self, kind: str) -> float:
        """The running base rate of the click or conversion labels (a gated model's
        neutral prediction; its prior before any label)."""
        click, conversion = self.models.base_rates()
        return click if kind == "click" else conversion

    def mean_revenue(self) -> float:
        """Mean order value learned so far (the revenue model's prior before any)."""
        r = self.models.revenue_score
        return r.y_sum / r.n if r.n else self.models.revenue.prior

    def value_average(self, campaign_id: str) -> float | None:
        return self.values.means.get(campaign_id)

    def mean_cost(self, campaign_id: str) -> float:
        return self.costs.means.get(campaign_id, 0.0)

    def version(self) -> str:
        return self.models.version()

    def is_empty(self) -> bool:
        return self.applied == 0 and not self.pending

    # Snapshots ----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "clock": self.clock,
            "pacer_tick": self.pacer_tick,
            "applied": self.applied,
            "seq": self.seq,
            "pending": [[t, s, msgspec.to_builtins(u)] for t, s, u in sorted(self.pending)],
            "models": self.models.to_state(),
            "segmenter": self.segmenter.to_state(),
            "segment_counts": self.segment_counts.to_state(),
            "recommender": self.recs.to_state(),
            "pacer": self.pacer.to_state(),
            "traffic": self.pacer.traffic.to_state(),
            "values": self.values.means,
            "value_counts": self.values.counts,
            "costs": self.costs.means,
            "cost_counts": self.costs.counts,
            "unknown_campaigns": self.unknown,
        }

    def _restore(self, s: dict[str, Any]) -> None:
        self.clock, self.applied, self.seq = int(s["clock"]), int(s["applied"]), int(s["seq"])
        self.pacer_tick = int(s.get("pacer_tick", 0))
        self.pending = list(_readable_pending(s["pending"]))
        heapq.heapify(self.pending)
        self.models._restore(s["models"])
        self.segmenter = Segmenter.from_state(s["segmenter"])
        # Snapshots written before issue 21 start counting afresh.
        counts = s.get("segment_counts")
        self.segment_counts = SegmentCounts.from_state(counts) if counts else SegmentCounts()
        self.recs._restore(s["recommender"])
        self.pacer._restore(s["pacer"])
        if "traffic" in s:
            self.pacer.traffic._restore(s["traffic"])
        self.values._restore({"means": s["values"], "counts": s.get("value_counts")})
        self.costs._restore({"means": s["costs"], "counts": s.get("cost_counts")})
        self.unknown = {str(c): int(t) for c, t in s.get("unknown_campaigns", {}).items()}


def _readable_pending(saved: Iterable[Any]) -> Iterable[tuple[int, int, Update]]:
    """The pending updates of a snapshot that read back; one that does not (a NaN saved
    as null by an older version) costs that update alone."""
    for t, q, u in saved:
        try:
            yield int(t), int(q), msgspec.convert(u, Update)
        except (msgspec.ValidationError, TypeError, ValueError):
            continue
