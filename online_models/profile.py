"""The online user profile and the pure functions that update it.

Every update is bounded (top-K categories, last-N items) and, where it can be, does
not depend on the order events arrive in, so a live worker reading three topics
and an offline replay merging them by time end with the same profile.

>>> from online_models.config import EngineConfig
>>> from online_models.events import ClickEvent
>>> cfg = EngineConfig()
>>> p = Profile(user_id="u1")
>>> apply_click(p, ClickEvent(event_id="e1", ts=1_700_000_000_000, user_id="u1",
...     type="view", item_id="i1", category="shoes"), cfg)
>>> p.totals, p.recent_items, p.sessions
({'view': 1}, [['i1', 1700000000000]], 1)
"""

from __future__ import annotations

import bisect
import math

import msgspec

from online_models.config import EngineConfig
from online_models.decay import advance, value_at
from online_models.events import AdImpression, ClickEvent, OrderEvent

# How much each action says about interest in a category.
AFFINITY_WEIGHTS = {
    "view": 1.0,
    "click": 1.5,
    "wishlist": 2.0,
    "add_to_cart": 3.0,
    "remove_from_cart": 0.0,
    "ad_click": 2.0,
    "search": 0.5,
    "order": 5.0,
}
RECENT_SESSIONS = 8
CTR_PRIOR_CLICKS = 1.0
CTR_PRIOR_IMPRESSIONS = 50.0


class Profile(msgspec.Struct, kw_only=True, repr_omit_defaults=True):
    """Per-user state that analysts and models read. All times are event time (ms)."""

    user_id: str
    first_seen: int = 0
    last_seen: int = 0
    decay_ref: int = 0
    decayed: dict[str, float] = msgspec.field(default_factory=dict)
    totals: dict[str, int] = msgspec.field(default_factory=dict)
    categories: dict[str, float] = msgspec.field(default_factory=dict)
    sessions: int = 0
    recent_sessions: list[list[str | int]] = msgspec.field(default_factory=list)
    recent_items: list[list[str | int]] = msgspec.field(default_factory=list)
    purchased: list[list[str | int]] = msgspec.field(default_factory=list)
    orders: int = 0
    refunds: int = 0
    revenue: float = 0.0
    first_order_ts: int = 0
    last_order_ts: int = 0
    ad_impressions: int = 0
    ad_clicks: int = 0
    segment: str = "new"

    @property
    def ctr(self) -> float:
        """Click-through rate smoothed towards a 2% prior."""
        return (self.ad_clicks + CTR_PRIOR_CLICKS) / (self.ad_impressions + CTR_PRIOR_IMPRESSIONS)

    @property
    def average_order_value(self) -> float:
        return self.revenue / self.orders if self.orders else 0.0

    def rfm(self, now: int) -> dict[str, float]:
        """Recency (days since last order), frequency and monetary on log scales."""
        last = self.last_order_ts or self.last_seen
        days = max(0.0, (now - last) / 86_400_000)
        return {
            "r": math.log1p(days),
            "f": math.log1p(self.orders),
            "m": math.log1p(max(self.revenue, 0.0)),
        }

    def top_categories(self, now: int, half_life: float, n: int = 3) -> list[tuple[str, float]]:
        ranked = sorted(self.categories.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        return [(c, value_at(v, self.decay_ref, now, half_life)) for c, v in ranked]


def _touch(p: Profile, ts: int, kind: str, category: str | None, cfg: EngineConfig) -> None:
    """Shared bookkeeping of every event: seen times, decayed counts, affinity."""
    if p.first_seen == 0 or ts < p.first_seen:
        p.first_seen = ts
    p.last_seen = max(p.last_seen, ts)
    p.decay_ref, w = advance((p.decayed, p.categories), p.decay_ref, ts, cfg.half_life_ms)
    p.decayed[kind] = p.decayed.get(kind, 0.0) + w
    p.totals[kind] = p.totals.get(kind, 0) + 1
    weight = AFFINITY_WEIGHTS.get(kind, 0.0)
    if category is not None and weight > 0:
        p.categories[category] = p.categories.get(category, 0.0) + weight * w
        if len(p.categories) > cfg.max_categories:
            _prune(p.categories, cfg.max_categories)


def _prune(values: dict[str, float], keep: int) -> None:
    ranked = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    for key, _ in ranked[keep:]:
        del values[key]


def _remember(items: list[list[str | int]], item: str, ts: int, cap: int) -> None:
    """Keep the latest time per item, sorted by (time, item), at most `cap` long."""
    for i, (known, seen) in enumerate(items):
        if known == item:
            if int(seen) >= ts:
                return
            del items[i]
            break
    entry: list[str | int] = [item, ts]
    bisect.insort(items, entry, key=_item_order)
    if len(items) > cap:
        del items[0]


def _item_order(entry: list[str | int]) -> tuple[int, str]:
    return int(entry[1]), str(entry[0])


def _session(p: Profile, session_id: str | None, ts: int, cfg: EngineConfig) -> None:
    if session_id is not None:
        # The most recent sessions by event time, not just the last id: going back to
        # an open tab, or an older event read late, is not a new session; and keeping
        # them by time (not arrival) makes the result independent of arrival order.
        sessions = p.recent_sessions
        for entry in sessions:
            if entry[0] == session_id:
                if ts > int(entry[1]):
                    entry[1] = ts
                    sessions.sort(key=_item_order)
                return
        if len(sessions) >= RECENT_SESSIONS and ts < int(sessions[0][1]):
            return  # older than every recent session: counted when it was current
        p.sessions += 1
        new: list[str | int] = [session_id, ts]
        bisect.insort(sessions, new, key=_item_order)
        if len(sessions) > RECENT_SESSIONS:
            del sessions[0]
    elif p.sessions == 0 or ts - p.last_seen > cfg.session_gap_ms:
        p.sessions += 1


def apply_click(p: Profile, ev: ClickEvent, cfg: EngineConfig) -> None:
    """Fold a clickstream event into the profile."""
    _session(p, ev.session_id, ev.ts, cfg)
    _touch(p, ev.ts, ev.type, ev.category, cfg)
    if ev.type == "ad_click":
        p.ad_clicks += 1
    elif ev.item_id is not None and ev.type != "remove_from_cart":
        _remember(p.recent_items, ev.item_id, ev.ts, cfg.max_recent_items)


def apply_order(p: Profile, ev: OrderEvent, cfg: EngineConfig) -> None:
    """Fold an order in; a refund or cancellation reverses its revenue."""
    total = float(ev.total or 0.0)
    if ev.status == "placed":
        for item in ev.items:
            _touch(p, ev.ts, "order", item.category, cfg)
            _remember(p.purchased, item.item_id, ev.ts, cfg.max_purchased)
        p.orders += 1
        p.revenue += total
        p.last_order_ts = max(p.last_order_ts, ev.ts)
        if p.first_order_ts == 0 or ev.ts < p.first_order_ts:
            p.first_order_ts = ev.ts
    else:
        _touch(p, ev.ts, ev.status, None, cfg)
        p.refunds += 1
        p.revenue = max(0.0, p.revenue - total)


def apply_impression(p: Profile, ev: AdImpression, cfg: EngineConfig) -> None:
    _touch(p, ev.ts, "ad_impression", None, cfg)
    p.ad_impressions += 1
