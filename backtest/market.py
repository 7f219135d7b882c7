"""The market model of the bidding simulation, explicit so results can be checked by
hand: what an impression costs to win, the daily budgets, and the constant bid that
spends a budget in hindsight (the baseline). See backtest/bidsim.py for the policies.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, NamedTuple

HOUR_MS = 3_600_000
_NORMAL = NormalDist()


class Impression(NamedTuple):
    ts: int
    impression_id: str
    user_id: str
    campaign_id: str
    bid: float  # recorded bid (informational: not used as a base, see module docstring)
    cost: float  # recorded clearing price; 0 means "not logged"
    multiplier: float  # the engine's multiplier for this impression (value x pacing)
    stream_multiplier: float = 1.0  # the bid-adjustment stream's, in force at its time


class Order(NamedTuple):
    ts: int
    user_id: str
    revenue: float


@dataclass(frozen=True)
class BidSimParams:
    budget_fraction: float = 0.5  # daily budget = this x market price per day (no events)
    price_mu: float = math.log(0.5)  # median market price 0.5 when no cost is logged
    price_sigma: float = 0.8
    seed: int = 7
    click_window_ms: int = HOUR_MS // 2
    conversion_window_ms: int = 24 * HOUR_MS
    spend_tolerance: float = 0.01  # adjusted vs constant spend, relative, per campaign


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
    return lognormal_price(imp.impression_id, p)


def lognormal_price(impression_id: str, p: BidSimParams) -> float:
    digest = hashlib.blake2b(f"{p.seed}:{impression_id}".encode(), digest_size=8).digest()
    u = (int.from_bytes(digest, "big") + 0.5) / 2**64
    return round(math.exp(p.price_mu + p.price_sigma * _NORMAL.inv_cdf(u)), 6)


def price_model(n_recorded: int, n_drawn: int, p: BidSimParams) -> dict[str, Any]:
    """The market-price model used, named for the report."""
    if n_drawn and n_recorded:
        name = "recorded_cost+lognormal"
    else:
        name = "lognormal" if n_drawn else "recorded_cost"
    out: dict[str, Any] = {
        "name": name,
        "recorded_cost": n_recorded,
        "lognormal": n_drawn,
        "auction": "second price: won when bid >= market price and the day's budget covers it",
    }
    if n_drawn:
        out["lognormal_median"] = round(math.exp(p.price_mu), 6)
        out["lognormal_sigma"] = p.price_sigma
        out["seed"] = p.seed
    return out


def budgets_from_prices(
    prices_by_day: Mapping[tuple[str, int], float], fraction: float
) -> dict[str, float]:
    """Daily budget per campaign = fraction x its mean market price per day it has
    impressions.

    >>> budgets_from_prices({("c", 0): 10.0, ("c", 1): 30.0, ("d", 1): 4.0}, 0.5)
    {'c': 10.0, 'd': 2.0}
    """
    totals: dict[str, list[float]] = {}
    for (c, _), v in prices_by_day.items():
        totals.setdefault(c, []).append(v)
    return {c: round(fraction * sum(v) / len(v), 6) for c, v in sorted(totals.items())}


def spend_steps(pairs: Iterable[tuple[float, float]]) -> Iterator[tuple[float, float]]:
    """(threshold, spend) pairs sorted by threshold -> (threshold, cumulative spend) at
    the end of each run of equal thresholds: what a policy winning every impression
    whose threshold is <= t spends, for each t where that changes (ties are won
    together). The constant bid and the equal-spend scale are both read off it.

    >>> list(spend_steps([(0.2, 0.2), (0.1, 0.1), (0.2, 0.2)]))
    [(0.1, 0.1), (0.2, 0.5)]
    """
    ordered = sorted(pairs)
    total = 0.0
    for i, (threshold, spend) in enumerate(ordered):
        total += spend
        if i + 1 == len(ordered) or ordered[i + 1][0] > threshold:
            yield threshold, total


def constant_bid_for_budget(prices: Sequence[float], budget: float) -> float:
    """The highest constant bid whose total spend (all prices <= bid) stays <= budget.

    >>> constant_bid_for_budget([0.3, 0.1, 0.2, 0.5], 0.35)   # 0.1 + 0.2 fits, +0.3 not
    0.2
    >>> constant_bid_for_budget([0.3], 0.1)
    0.0
    """
    bid = 0.0
    for price, total in spend_steps((p, p) for p in prices):
        if total > budget + 1e-12:
            break
        bid = price
    return bid


def constant_bids(
    prices: Mapping[tuple[str, int], list[float]], budgets: Mapping[str, float]
) -> dict[tuple[str, int], float]:
    """(campaign, day) -> the constant bid that spends at most that day's budget."""
    return {k: constant_bid_for_budget(v, budgets.get(k[0], 0.0)) for k, v in prices.items()}
