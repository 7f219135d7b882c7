"""The `make run` demo's market, without Kafka: its synthetic stream, its ad server
(`DemoBidder`: serves an impression only when the bid x the engine's multiplier
clears the price) and the closed loop of both with the offline engine
(`online_models.runner.Runner`, the domain code the worker runs), so that a test can
drive whole demo days in seconds instead of hours of `make run`.

The live demo's ad server reads the worker's bid adjustments some records late (the
worker's lag: 26,000 records on a busy 2-core machine); `closed_loop(lag=...)` keeps
the outputs that many records before the ad server sees them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from typing import Any

import msgspec
import orjson

DAY_MS = 86_400_000
# The synthetic stream's campaigns would spend about 4,080 / 2,740 / 2,010 a day of
# event time if every impression were served (measured over its 6-hour segments);
# their published budgets (600-1,000) were 2-7x smaller, so the budget was gone
# within minutes and every bid read x0.00. The demo budgets are 60 % of that
# natural spend: pacing has to hold bids back, and can (the demo serves only the
# impressions its bids win).
DEMO_BUDGETS = {"c1": 2450.0, "c2": 1640.0, "c3": 1200.0}
DEMO_USERS = 500  # users per 6-hour segment; the budgets above are for this many
ID_FIELDS = ("user_id", "event_id", "session_id", "impression_id", "order_id")
SEGMENT_S = 6 * 3600  # dense in event time, so click windows (30 min) close within seconds


def demo_budgets(n_users: int = DEMO_USERS) -> dict[str, float]:
    """The budgets for a population of `n_users` per segment (spend scales with it)."""
    return {c: round(b * n_users / DEMO_USERS, 2) for c, b in DEMO_BUDGETS.items()}


def demo_stream(seed: int, start_ms: int, n_users: int = DEMO_USERS) -> Iterator[Any]:
    """Synthetic 6-hour segments back to back, each with its own seed and users."""
    from backtest.synthetic import generate

    while True:
        for topic, event in generate(
            n_users=n_users, duration_s=SEGMENT_S, seed=seed, start_ms=start_ms
        ):
            for key in ID_FIELDS:  # ids restart per segment: keep them unique
                if key in event:
                    event[key] = f"{event[key]}-{seed}"
            yield topic, event
        seed += 1
        start_ms += SEGMENT_S * 1000


class DemoBidder:
    """The demo's ad server: it serves an impression only when the impression's bid x
    the engine's multiplier (the user's latest value part x the campaign's latest
    pacing factor, from the bid-adjustment stream) reaches its clearing price, so
    the worker's pacing really controls spend, as a bidder would let it. Keeps
    today's spend per campaign (event time) and, for the screen, when each campaign
    last won."""

    MAX_USERS = 200_000

    def __init__(self, budgets: dict[str, float] | None = None) -> None:
        self.budgets = dict(DEMO_BUDGETS if budgets is None else budgets)
        self.values: dict[tuple[str, str], float] = {}
        self.pacing: dict[str, float] = {}
        self.day = self.first_day = -1
        self.spend: dict[str, float] = {}
        self.last_win: dict[str, int] = {}  # campaign -> event time of its last win
        self.day_start = 0
        self.served = self.offered = 0
        self.clock = 0
        self.days: list[dict[str, float]] = []  # each finished day's spend

    def record(self, adj: dict[str, Any]) -> None:
        factor = float(adj.get("pacing_factor") or 0.0)
        # Every record carries the campaign's factor as of its time, a user's too: a
        # new day's factor arrives with the first re-priced user, not only with the
        # next announcement.
        self.pacing[adj["campaign_id"]] = factor
        if adj.get("user_id") is None:
            return
        if len(self.values) >= self.MAX_USERS:
            self.values.clear()
        value = float(adj["multiplier"]) / factor if factor > 0 else 1.0
        self.values[(adj["user_id"], adj["campaign_id"])] = value

    def serve(self, imp: dict[str, Any]) -> bool:
        c = imp["campaign_id"]
        mult = self.values.get((imp["user_id"], c), 1.0) * self.pacing.get(c, 1.0)
        ts = int(imp["ts"])
        self.clock = max(self.clock, ts)
        if ts // DAY_MS > self.day:
            if self.day >= 0:
                self.days.append(self.spend)
            else:
                self.first_day = ts // DAY_MS
            self.day, self.spend = ts // DAY_MS, {}
            self.day_start = self.day * DAY_MS
        self.offered += 1
        cost = float(imp.get("cost", 0.0))
        if float(imp.get("bid", 0.0)) * mult < cost:
            return False
        if self.spend.get(c, 0.0) + cost > self.budgets.get(c, math.inf):
            return False  # an ad server caps spend itself; pacing is what keeps it smooth
        self.served += 1
        self.spend[c] = self.spend.get(c, 0.0) + cost
        self.last_win[c] = ts
        return True

    def idle_ms(self, campaign_id: str) -> int:
        """Event time since the campaign last won today (since midnight if not yet)."""
        return self.clock - max(self.last_win.get(campaign_id, 0), self.day_start)


def closed_loop(
    days: int, lag: int = 0, n_users: int = DEMO_USERS, seed: int = 7, partitions: int = 4
) -> list[dict[str, float]]:
    """Each demo day's spend per campaign, the ad server and the offline engine in a
    loop: only the impressions won (and the clicks on them) reach the engine, and the
    engine's bid adjustments reach the ad server `lag` records later."""
    from backtest.synthetic import campaigns
    from online_models.config import EngineConfig
    from online_models.decode import decode_dict
    from online_models.events import Campaign
    from online_models.outputs import BidAdjustment
    from online_models.runner import Runner

    runner = Runner(EngineConfig(partitions=partitions))
    budgets = demo_budgets(n_users)
    bidder = DemoBidder(budgets)
    for c in campaigns(3):
        c["daily_budget"] = budgets[c["campaign_id"]]
        runner.set_campaign(msgspec.convert(c, Campaign))
    start = 1_700_000_000_000 // DAY_MS * DAY_MS
    pending: deque[list[dict[str, Any]]] = deque()
    unserved: set[str] = set()
    for topic, ev in demo_stream(seed, start, n_users):
        if ev["ts"] >= start + days * DAY_MS:
            break
        if topic == "ad-impressions" and not bidder.serve(ev):
            unserved.add(ev["impression_id"])
            continue
        if ev.get("impression_id") in unserved:  # a click on an ad not shown
            continue
        event = decode_dict(topic, ev)
        assert not isinstance(event, Campaign)  # the stream holds no campaign records
        outputs = runner.feed(topic, event).outputs
        pending.append(
            [orjson.loads(msgspec.json.encode(o)) for o in outputs if isinstance(o, BidAdjustment)]
        )
        while len(pending) > lag:
            for adj in pending.popleft():
                bidder.record(adj)
    return [*bidder.days, bidder.spend][:days]
