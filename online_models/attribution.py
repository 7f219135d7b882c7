"""Label joining in event time: impression -> click -> order.

An impression opens a click window; when the window closes the impression becomes a
click label, positive if its `ad_click` came inside the window. Positives and
negatives are thus learned after the same delay: learning positives at click time
and negatives only at window close would bias the model upwards while it is young.

A click opens a conversion window (the `on_click` hook hears of it at once). The
user's next order inside it (last touch) is credited to it as a `converted` label
with its revenue, as soon as the order is known; when the window closes, the click's
final `conversion` label says whether it converted. The conversion model learns from
the first two at once and is judged by the last (`online_models.learner`: delayed
feedback).

Windows close on the watermark (latest event time minus allowed lateness), never on
a wall clock, so a replay produces the same labels. Orders are credited when the
watermark passes them, to the latest click before them, so a click read after its
order (three topics are read concurrently) still gets its conversion; a click read
before its impression is held until the watermark passes it for the same reason.

>>> a = Attribution(click_window=100, conversion_window=1000, lateness=10)
>>> a.add_impression("i1", "u", "c1", ts=0, x={"bias": 1.0}, cost=0.5)
[]
>>> a.click("u", "i1", ts=50)
[]
>>> a.add_impression("i2", "u", "c1", ts=60, x={"bias": 1.0}, cost=0.5)
[]
>>> a.observe(400)   # watermark 390 closes both click windows (0 + 100, 60 + 100)
>>> [(l.kind, l.y, l.impression_id) for l in a.expire()]
[('click', True, 'i1'), ('click', False, 'i2')]
>>> a.order("u", ts=500, revenue=80.0)
[]
>>> a.observe(520)   # watermark 510 passes the order: last touch is i1's click
>>> [(l.kind, l.y, l.revenue, l.impression_id) for l in a.expire()]
[('converted', True, 80.0, 'i1')]
>>> a.observe(1100)  # watermark 1090 closes i1's conversion window (50 + 1000)
>>> [(l.kind, l.y, l.impression_id) for l in a.expire()]
[('conversion', True, 'i1')]
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from online_models.snapshot import Restorable


class Label:
    """A resolved training example for the click or conversion model."""

    __slots__ = (
        "base",
        "campaign_id",
        "impression_id",
        "kind",
        "p",
        "revenue",
        "ts",
        "user_id",
        "x",
        "y",
    )

    def __init__(self, kind: str, y: bool, pending: Pending, ts: int, revenue: float = 0.0):
        self.kind = kind
        self.p = pending.p
        self.base = pending.base
        self.y = y
        self.x = pending.x
        self.campaign_id = pending.campaign_id
        self.impression_id = pending.impression_id
        self.user_id = pending.user_id
        self.ts = ts
        self.revenue = revenue


class Pending:
    """An impression waiting for its click, or a click waiting for an order (`p`: the
    conversion prediction made when the click happened, -1 if none was made, and
    `base` the running conversion base rate then; `converted`: an order was credited
    to it)."""

    __slots__ = (
        "base",
        "campaign_id",
        "clicked",
        "converted",
        "cost",
        "impression_id",
        "p",
        "ts",
        "user_id",
        "x",
    )

    def __init__(
        self,
        impression_id: str,
        user_id: str,
        campaign_id: str,
        ts: int,
        x: dict[str, float],
        cost: float,
        clicked: bool = False,
        p: float = -1.0,
        converted: bool = False,
        base: float = -1.0,
    ) -> None:
        self.p = p
        self.base = base
        self.converted = converted
        self.impression_id = impression_id
        self.user_id = user_id
        self.campaign_id = campaign_id
        self.ts = ts
        self.x = x
        self.cost = cost
        self.clicked = clicked

    def at(self, ts: int) -> Pending:
        """The same impression as a click at `ts`, waiting for an order."""
        return Pending(
            self.impression_id, self.user_id, self.campaign_id, ts, self.x, self.cost, True
        )

    def to_state(self) -> list[Any]:
        return [
            self.impression_id,
            self.user_id,
            self.campaign_id,
            self.ts,
            self.x,
            self.cost,
            self.clicked,
            self.p,
            self.converted,
            self.base,
        ]

    @classmethod
    def from_state(cls, s: list[Any]) -> Pending:
        # Snapshots before issue 11 have neither p, converted nor base.
        p, converted, base = (float(s[7]), bool(s[8]), float(s[9])) if len(s) > 9 else (-1, 0, -1)
        return cls(
            str(s[0]),
            str(s[1]),
            str(s[2]),
            int(s[3]),
            dict(s[4]),
            float(s[5]),
            bool(s[6]),
            float(p),
            bool(converted),
            float(base),
        )


class Attribution(Restorable):
    def __init__(
        self,
        click_window: int,
        conversion_window: int,
        lateness: int,
        max_pending: int = 200_000,
        max_clicks_per_user: int = 5,
        on_click: Callable[[Pending], None] | None = None,
    ) -> None:
        # Called with each click that opens a conversion window (the engine stamps the
        # conversion prediction on it and emits the fake negative).
        self.on_click = on_click
        self.click_window = click_window
        self.conversion_window = conversion_window
        self.lateness = lateness
        self.max_pending = max_pending
        self.max_clicks_per_user = max_clicks_per_user
        self.max_ts = 0
        self.impressions: dict[str, Pending] = {}
        self.clicks: dict[str, list[Pending]] = {}
        self.early_clicks: dict[str, int] = {}  # impression_id -> click ts
        self.orders: dict[str, list[tuple[int, float]]] = {}  # user -> [(ts, revenue)]
        # (due, rank, seq, kind, key): at equal due times orders (rank 0) are credited
        # before windows close (rank 1), since a window includes its last instant.
        self.deadlines: list[tuple[int, int, int, str, str]] = []
        self.seq = 0
        self.counters = {"late_clicks": 0, "evicted": 0}

    @property
    def watermark(self) -> int:
        return self.max_ts - self.lateness

    def observe(self, ts: int) -> None:
        if ts > self.max_ts:
            self.max_ts = ts

    def _due(self, due: int, kind: str, key: str) -> None:
        self.seq += 1
        heapq.heappush(self.deadlines, (due, 0 if kind == "order" else 1, self.seq, kind, key))

    def add_impression(
        self,
        impression_id: str,
        user_id: str,
        campaign_id: str,
        ts: int,
        x: dict[str, float],
        cost: float,
    ) -> list[Label]:
        pending = Pending(impression_id, user_id, campaign_id, ts, x, cost)
        if len(self.impressions) >= self.max_pending:
            self._evict_oldest()
        self.impressions[impression_id] = pending
        self._due(ts + self.click_window, "imp", impression_id)
        click_ts = self.early_clicks.pop(impression_id, None)
        if click_ts is not None and 0 <= click_ts - ts <= self.click_window:
            pending.clicked = True
            return self._open_click(pending.at(click_ts))
        return []

    def click(self, user_id: str, impression_id: str, ts: int) -> list[Label]:
        pending = self.impressions.get(impression_id)
        if pending is None:
            if ts >= self.watermark:
                self.early_clicks[impression_id] = ts
                self._due(ts + self.lateness, "early_click", impression_id)
            else:
                self.counters["late_clicks"] += 1
            return []
        if (
            pending.user_id != user_id
            or pending.clicked
            or not 0 <= ts - pending.ts <= self.click_window
        ):
            return []
        pending.clicked = True
        return self._open_click(pending.at(ts))

    def _open_click(self, pending: Pending) -> list[Label]:
        ts = pending.ts
        if self.on_click is not None:
            self.on_click(pending)
        clicks = self.clicks.setdefault(pending.user_id, [])
        clicks.append(pending)
        if len(clicks) > self.max_clicks_per_user:
            clicks.pop(0)
            self.counters["evicted"] += 1
        self._due(ts + self.conversion_window, "click", pending.user_id)
        return []

    def order(self, user_id: str, ts: int, revenue: float) -> list[Label]:
        """Hold the order until the watermark passes it (see module docstring)."""
        self.orders.setdefault(user_id, []).append((ts, revenue))
        self._due(ts, "order", user_id)
        return []

    def _credit_orders(self, user_id: str, wm: int) -> list[Label]:
        held = self.orders.get(user_id, [])
        due = sorted(o for o in held if o[0] < wm)
        if not due:
            return []
        keep = [o for o in held if o[0] >= wm]
        if keep:
            self.orders[user_id] = keep
        else:
            del self.orders[user_id]
        out = []
        for ts, revenue in due:
            clicks = self.clicks.get(user_id, [])
            best = None
            for c in clicks:
                if (
                    not c.converted
                    and 0 <= ts - c.ts <= self.conversion_window
                    and (best is None or c.ts > best.ts)
                ):
                    best = c
            if best is not None:  # its final label comes when its window closes
                best.converted = True
                out.append(Label("converted", True, best, ts, revenue))
        if user_id in self.clicks and not self.clicks[user_id]:
            del self.clicks[user_id]
        return out

    def expire(self) -> list[Label]:
        """Close every window the watermark has passed; return the negative labels."""
        out: list[Label] = []
        wm = self.watermark
        while self.deadlines and self.deadlines[0][0] < wm:
            due, _, _, kind, key = heapq.heappop(self.deadlines)
            if kind == "imp":
                p = self.impressions.get(key)
                if p is not None and p.ts + self.click_window == due:
                    del self.impressions[key]
                    out.append(Label("click", p.clicked, p, due))
            elif kind == "click":
                out.extend(self._expire_clicks(key, wm))
            elif kind == "early_click":
                self.early_clicks.pop(key, None)
            else:
                out.extend(self._credit_orders(key, wm))
        return out

    def _expire_clicks(self, user_id: str, wm: int) -> list[Label]:
        clicks = self.clicks.get(user_id, [])
        done = [c for c in clicks if c.ts + self.conversion_window < wm]
        if done:
            keep = [c for c in clicks if c.ts + self.conversion_window >= wm]
            if keep:
                self.clicks[user_id] = keep
            else:
                del self.clicks[user_id]
        return [Label("conversion", c.converted, c, c.ts + self.conversion_window) for c in done]

    def _evict_oldest(self) -> None:
        oldest = min(self.impressions.values(), key=lambda p: (p.ts, p.impression_id))
        del self.impressions[oldest.impression_id]
        self.counters["evicted"] += 1

    def to_state(self) -> dict[str, Any]:
        return {
            "max_ts": self.max_ts,
            "seq": self.seq,
            "deadlines": self.deadlines,
            "impressions": [p.to_state() for p in self.impressions.values()],
            "clicks": {u: [c.to_state() for c in cs] for u, cs in self.clicks.items()},
            "early_clicks": self.early_clicks,
            "orders": self.orders,
            "counters": self.counters,
        }

    def _restore(self, s: dict[str, Any]) -> None:
        self.max_ts, self.seq = int(s["max_ts"]), int(s["seq"])
        self.deadlines = [
            (int(d), int(r), int(q), str(k), str(key)) for d, r, q, k, key in s["deadlines"]
        ]
        heapq.heapify(self.deadlines)
        self.impressions = {p[0]: Pending.from_state(p) for p in s["impressions"]}
        self.clicks = {u: [Pending.from_state(c) for c in cs] for u, cs in s["clicks"].items()}
        self.early_clicks = {k: int(v) for k, v in s["early_clicks"].items()}
        self.orders = {u: [(int(t), float(r)) for t, r in v] for u, v in s["orders"].items()}
        self.counters = {k: int(v) for k, v in s["counters"].items()}
