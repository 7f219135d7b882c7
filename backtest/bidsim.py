"""Bidding simulation: the engine's adjusted bids against a constant bid, same budget.

Market model (explicit, so results can be checked by hand):

* the market price of an impression (the highest competing bid) is its recorded
  `cost` when > 0, else a lognormal draw seeded by (seed, impression_id), so it does
  not depend on the order or the subset of impressions simulated;
* an impression is won when bid >= market price and the campaign's budget still
  covers the price; the winner pays the market price (second price);
* clicks are the real `ad_click` events joined by impression_id (same user, within
  the click window); an order converts the latest won *clicked* impression of the
  same user whose click is at most 24 h before it (last touch, each click converts
  once, as in online_models/attribution.py); revenue is the order total.

Budget per campaign = `budget_fraction` x the sum of its market prices. The
baseline bids one constant per campaign, calibrated in hindsight to spend as much of
that budget as possible without running out (`constant_bid_for_budget`), so it is
a strong baseline: it paces perfectly by construction.

>>> imps = [Impression(0, "i1", "u", "c", 1.0, 0.5, 2.0),
...         Impression(10, "i2", "u", "c", 1.0, 0.8, 0.5)]
>>> r = run_policy(imps, [2.0, 0.5], [0.5, 0.8], {"c": 1.0}, {"i1": 5}, [], (0, 10))
>>> r.won, r.spend, r.clicks
(1, 0.5, 1)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, NamedTuple

from online_models.outputs import BidAdjustment

HOUR_MS = 3_600_000
CURVE_POINTS = 50
_NORMAL = NormalDist()


class Impression(NamedTuple):
    ts: int
    impression_id: str
    user_id: str
    campaign_id: str
    bid: float  # recorded bid; 0 means "not logged", then the market price is used
    cost: float  # recorded clearing price; 0 means "not logged"
    multiplier: float  # the engine's effective multiplier in force at impression time


class Order(NamedTuple):
    ts: int
    user_id: str
    revenue: float


@dataclass(frozen=True)
class BidSimParams:
    budget_fraction: float = 0.5
    price_mu: float = math.log(0.5)  # median market price 0.5 when no cost is logged
    price_sigma: float = 0.8
    seed: int = 7
    click_window_ms: int = HOUR_MS // 2
    conversion_window_ms: int = 24 * HOUR_MS


@dataclass
class PolicyResult:
    won: int = 0
    spend: float = 0.0
    clicks: int = 0
    conversions: int = 0
    revenue: float = 0.0
    by_campaign: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "won": self.won,
            "spend": round(self.spend, 6),
            "clicks": self.clicks,
            "conversions": self.conversions,
            "revenue": round(self.revenue, 6),
            "roas": round(self.revenue / self.spend, 6) if self.spend > 0 else None,
            "campaigns": self.by_campaign,
        }


def market_price(imp: Impression, p: BidSimParams) -> float:
    """Recorded cost, or a seeded lognormal draw keyed by the impression id.

    >>> market_price(Impression(0, "i", "u", "c", 1.0, 0.3, 1.0), BidSimParams())
    0.3
    >>> a = market_price(Impression(0, "i", "u", "c", 1.0, 0.0, 1.0), BidSimParams())
    >>> a == market_price(Impression(9, "i", "v", "d", 2.0, 0.0, 1.0), BidSimParams()) > 0
    True
    """
    if imp.cost > 0:
        return imp.cost
    digest = hashlib.blake2b(f"{p.seed}:{imp.impression_id}".encode(), digest_size=8).digest()
    u = (int.from_bytes(digest, "big") + 0.5) / 2**64
    return round(math.exp(p.price_mu + p.price_sigma * _NORMAL.inv_cdf(u)), 6)


def constant_bid_for_budget(prices: Sequence[float], budget: float) -> float:
    """The highest constant bid whose total spend (all prices <= bid) stays <= budget.

    >>> constant_bid_for_budget([0.3, 0.1, 0.2, 0.5], 0.35)   # 0.1 + 0.2 fits, +0.3 not
    0.2
    >>> constant_bid_for_budget([0.3], 0.1)
    0.0
    """
    bid, total = 0.0, 0.0
    ordered = sorted(prices)
    for i, price in enumerate(ordered):
        total += price
        if total > budget + 1e-12:
            break
        # Ties must fit together: a bid of `price` wins every impression priced at it.
        if i + 1 == len(ordered) or ordered[i + 1] > price:
            bid = price
    return bid


def joined_clicks(
    imps: Sequence[Impression], clicks: Sequence[tuple[str, str, int]], window_ms: int
) -> dict[str, int]:
    """impression_id -> first click ts, for (impression_id, user_id, ts) clicks by the
    impression's user inside the click window."""
    by_id = {i.impression_id: i for i in imps}
    out: dict[str, int] = {}
    for impression_id, user_id, ts in clicks:
        imp = by_id.get(impression_id)
        if imp is None or imp.user_id != user_id or not 0 <= ts - imp.ts <= window_ms:
            continue
        if impression_id not in out or ts < out[impression_id]:
            out[impression_id] = ts
    return out


def run_policy(
    imps: Sequence[Impression],
    bids: Sequence[float],
    prices: Sequence[float],
    budgets: dict[str, float],
    clicks: dict[str, int],
    orders: Sequence[Order],
    window: tuple[int, int],
    p: BidSimParams | None = None,
) -> PolicyResult:
    """Replay `imps` (sorted by ts) with `bids`; count wins, spend, clicks, conversions."""
    p = p or BidSimParams()
    res = PolicyResult()
    spent = dict.fromkeys(budgets, 0.0)
    touches: dict[str, list[int]] = {}
    t0, t1 = window
    span = max(t1 - t0, 1)
    pace_err: dict[str, list[float]] = {c: [] for c in budgets}
    curve: dict[str, list[list[float]]] = {c: [] for c in budgets}
    for imp, bid, price in zip(imps, bids, prices, strict=True):
        c = imp.campaign_id
        if bid >= price and spent[c] + price <= budgets[c] + 1e-12:
            spent[c] += price
            res.won += 1
            click_ts = clicks.get(imp.impression_id)
            if click_ts is not None:
                res.clicks += 1
                touches.setdefault(imp.user_id, []).append(click_ts)
        elapsed = (imp.ts - t0) / span
        share = spent[c] / budgets[c] if budgets[c] > 0 else 0.0
        pace_err[c].append(abs(share - elapsed))
        curve[c].append([round(elapsed, 4), round(share, 4)])
    for order in sorted(orders):
        user_touches = touches.get(order.user_id)
        if not user_touches:
            continue
        eligible = [t for t in user_touches if 0 <= order.ts - t <= p.conversion_window_ms]
        if eligible:
            user_touches.remove(max(eligible))
            res.conversions += 1
            res.revenue += order.revenue
    res.spend = sum(spent.values())
    for c in sorted(budgets):
        errs = pace_err[c]
        res.by_campaign[c] = {
            "budget": round(budgets[c], 6),
            "spend": round(spent[c], 6),
            "pacing_error": round(sum(errs) / len(errs), 6) if errs else None,
            "curve": _thin(curve[c]),
        }
    return res


def _thin(points: list[list[float]]) -> list[list[float]]:
    step = max(1, math.ceil(len(points) / CURVE_POINTS))
    out = points[::step]
    if points and out[-1] is not points[-1]:
        out.append(points[-1])
    return out


def simulate(
    imps: Sequence[Impression],
    clicks: Sequence[tuple[str, str, int]],
    orders: Sequence[Order],
    p: BidSimParams | None = None,
) -> dict[str, Any]:
    """Adjusted policy vs. equal-budget constant baseline; JSON-ready summary."""
    p = p or BidSimParams()
    imps = sorted(imps, key=lambda i: (i.ts, i.impression_id))
    if not imps:
        return {"impressions": 0, "params": _params(p), "policy": None, "baseline": None}
    prices = [market_price(i, p) for i in imps]
    by_campaign: dict[str, list[float]] = {}
    for imp, price in zip(imps, prices, strict=True):
        by_campaign.setdefault(imp.campaign_id, []).append(price)
    budgets = {c: p.budget_fraction * sum(ps) for c, ps in by_campaign.items()}
    constant = {c: constant_bid_for_budget(ps, budgets[c]) for c, ps in by_campaign.items()}
    joined = joined_clicks(imps, clicks, p.click_window_ms)
    window = (imps[0].ts, imps[-1].ts)
    adjusted = [
        (i.bid if i.bid > 0 else price) * i.multiplier
        for i, price in zip(imps, prices, strict=True)
    ]
    flat = [constant[i.campaign_id] for i in imps]
    policy = run_policy(imps, adjusted, prices, budgets, joined, orders, window, p)
    baseline = run_policy(imps, flat, prices, budgets, joined, orders, window, p)
    return {
        "impressions": len(imps),
        "clicked_impressions": len(joined),
        "params": _params(p),
        "constant_bids": {c: round(v, 6) for c, v in sorted(constant.items())},
        "policy": policy.summary(),
        "baseline": baseline.summary(),
    }


def _params(p: BidSimParams) -> dict[str, Any]:
    return {
        "budget_fraction": p.budget_fraction,
        "price_mu": round(p.price_mu, 6),
        "price_sigma": p.price_sigma,
        "seed": p.seed,
    }


class BidBook:
    """What a bidder would hold from the bid-adjustment stream: the latest value part
    of each (user, campaign) multiplier and the latest pacing factor of each campaign
    (campaign-wide, whichever partition announced it), each in force for its ttl. The
    effective multiplier re-paces the user's value with the newest pacing factor, so a
    pacing update reaches users whose own adjustment is older.

    >>> from online_models.outputs import BidAdjustment
    >>> def adj(ts, user, mult, pace):
    ...     return BidAdjustment(event_id="e", ts=ts, user_id=user, campaign_id="c",
    ...         multiplier=mult, p_click=None, p_conversion=None, expected_revenue=None,
    ...         expected_roas=None, pacing_factor=pace, reason="new", ttl_s=60,
    ...         model_version="m", source_event_id="s", shard=0, shards=1)
    >>> book = BidBook()
    >>> book.record(adj(0, "u", 1.5, 1.0)); book.record(adj(10, None, 0.5, 0.5))
    >>> book.multiplier("u", "c", 20), book.multiplier("v", "c", 20)
    (0.75, 0.5)
    >>> book.multiplier("u", "c", 70_001)   # both expired: neutral
    1.0
    """

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], tuple[int, float]] = {}
        self.pacing: dict[str, tuple[int, float]] = {}

    def record(self, adj: BidAdjustment) -> None:
        until = adj.ts + adj.ttl_s * 1000
        if adj.user_id is not None:
            value = adj.multiplier / adj.pacing_factor if adj.pacing_factor > 0 else 1.0
            self.values[(adj.user_id, adj.campaign_id)] = (until, value)
        self.pacing[adj.campaign_id] = (until, adj.pacing_factor)

    def multiplier(self, user_id: str, campaign_id: str, ts: int) -> float:
        value = self.values.get((user_id, campaign_id))
        pace = self.pacing.get(campaign_id)
        v = value[1] if value is not None and ts <= value[0] else 1.0
        f = pace[1] if pace is not None and ts <= pace[0] else 1.0
        return round(v * f, 6)
