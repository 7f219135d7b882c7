"""Bidding simulation: the engine's adjusted bids against a constant bid and an oracle,
at equal spend of the same daily budgets.

Market model (explicit, so results can be checked by hand; the report names it):

* the market price of an impression (the highest competing bid) is its recorded
  `cost` when > 0 (`recorded_cost`), else a lognormal draw seeded by
  (seed, impression_id) (`lognormal`), so it does not depend on the order or the
  subset of impressions simulated;
* an impression is won when bid >= market price and the campaign's budget for that
  UTC day still covers the price; the winner pays the market price (second price);
* clicks are the real `ad_click` events joined by impression_id (same user, within
  the click window); an order converts the latest won *clicked* impression of the
  same user whose click is at most 24 h before it (last touch, each click converts
  once, as in online_models/attribution.py); revenue is the order total.

Budgets are daily, per campaign, the same numbers the engine paces against (campaign
events, or handed to the engine by the replay; `budgets_from_prices`). Policies:

* **constant**: one bid per campaign and day, the highest whose spend that day stays
  within the budget, found in hindsight (`constant_bid_for_budget`): it paces
  perfectly by construction, a strong baseline;
* **adjusted**: that constant bid x the engine's multiplier for the impression, x one
  scale per campaign and day so that it spends what the constant
  spends that day, as close as one impression's price allows (`equal_spend_scale`);
  the engine's own pacing already lands its spend on the budget (`closed_loop`,
  unscaled), the scale only removes what is left of the difference;
* **oracle** (when the true click probabilities are known, backtest/truth.py): bids in
  proportion to the true click probability, scaled per campaign and day to spend
  what the constant spends; the best any policy can do with clicks as the goal
  (up to the budget's last, indivisible impression); **oracle_value** the same with
  the true p_click x p_conversion, the best with conversions (value) as the goal.

>>> imps = [Impression(0, "i1", "u", "c", 1.0, 0.5, 2.0),
...         Impression(10, "i2", "u", "c", 1.0, 0.8, 0.5)]
>>> r = run_policy(imps, [2.0, 0.5], [0.5, 0.8], {"c": 1.0}, {"i1": 5}, [])
>>> r.won, r.spend, r.clicks
(1, 0.5, 1)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backtest.market import (
    BidSimParams,
    Impression,
    Order,
    budgets_from_prices,
    constant_bids,
    market_price,
    price_model,
    spend_steps,
)

DAY_MS = 86_400_000
CURVE_POINTS = 50


@dataclass
class PolicyResult:
    won: int = 0
    spend: float = 0.0
    clicks: int = 0
    conversions: int = 0
    revenue: float = 0.0
    expected_clicks: float = 0.0  # sum of true click probabilities won (truth known)
    expected_conversions: float = 0.0
    by_campaign: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "won": self.won,
            "spend": round(self.spend, 6),
            "clicks": self.clicks,
            "conversions": self.conversions,
            "revenue": round(self.revenue, 6),
            "roas": round(self.revenue / self.spend, 6) if self.spend > 0 else None,
            "expected_clicks": round(self.expected_clicks, 4),
            "expected_conversions": round(self.expected_conversions, 4),
            "pacing": pacing_summary(self.by_campaign),
            "campaigns": self.by_campaign,
        }


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


def wins(
    imps: Sequence[Impression],
    bids: Sequence[float],
    prices: Sequence[float],
    budgets: Mapping[str, float],
) -> list[bool]:
    """Which impressions (sorted by ts) `bids` win under the daily budgets."""
    spent: dict[tuple[str, int], float] = {}
    out = []
    for imp, bid, price in zip(imps, bids, prices, strict=True):
        key = (imp.campaign_id, imp.ts // DAY_MS)
        s = spent.get(key, 0.0)
        won = bid >= price and s + price <= budgets.get(imp.campaign_id, 0.0) + 1e-12
        if won:
            spent[key] = s + price
        out.append(won)
    return out


def run_policy(
    imps: Sequence[Impression],
    bids: Sequence[float],
    prices: Sequence[float],
    budgets: Mapping[str, float],
    clicks: Mapping[str, int],
    orders: Sequence[Order],
    p: BidSimParams | None = None,
    truth: Mapping[str, tuple[float, float]] | None = None,
) -> PolicyResult:
    """Replay `imps` (sorted by ts) with `bids`; count wins, spend, clicks, conversions
    and, per campaign and day, the pacing errors (`pacing_summary`)."""
    p = p or BidSimParams()
    res = PolicyResult()
    won = wins(imps, bids, prices, budgets)
    spent: dict[tuple[str, int], float] = {}
    market: dict[tuple[str, int], float] = {}  # the day's total market price
    dev: dict[tuple[str, int], list[float]] = {}
    curve: dict[str, list[list[float]]] = {}
    touches: dict[str, list[int]] = {}
    counts: dict[tuple[str, int], list[int]] = {}  # won, clicks
    for imp, w, price in zip(imps, won, prices, strict=True):
        c, day = imp.campaign_id, imp.ts // DAY_MS
        key = (c, day)
        market[key] = market.get(key, 0.0) + price
        if w:
            spent[key] = spent.get(key, 0.0) + price
            res.won += 1
            n = counts.setdefault(key, [0, 0])
            n[0] += 1
            if truth is not None and imp.impression_id in truth:
                pc, pv = truth[imp.impression_id]
                res.expected_clicks += pc
                res.expected_conversions += pc * pv
            click_ts = clicks.get(imp.impression_id)
            if click_ts is not None:
                res.clicks += 1
                n[1] += 1
                touches.setdefault(imp.user_id, []).append(click_ts)
        budget = budgets.get(c, 0.0)
        elapsed = (imp.ts - day * DAY_MS) / DAY_MS
        share = spent.get(key, 0.0) / budget if budget > 0 else 0.0
        dev.setdefault(key, []).append(abs(share - elapsed))
        curve.setdefault(c, []).append([round(day + elapsed, 4), round(day + share, 4)])
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
    for c in sorted({k[0] for k in dev}):
        days = sorted(d for cc, d in dev if cc == c)
        budget = budgets.get(c, 0.0)
        res.by_campaign[c] = {
            "budget": round(budget, 6),
            "spend": round(sum(spent.get((c, d), 0.0) for d in days), 6),
            "days": {
                str(d): {
                    "spend": round(spent.get((c, d), 0.0), 6),
                    "won": counts.get((c, d), [0, 0])[0],
                    "clicks": counts.get((c, d), [0, 0])[1],
                    "end_error": _ratio(abs(budget - spent.get((c, d), 0.0)), budget),
                    "curve_error": round(sum(dev[(c, d)]) / len(dev[(c, d)]), 6),
                    # Less on offer that day than the budget: no policy can spend it.
                    "spendable": market[(c, d)] >= budget,
                }
                for d in days
            },
            "curve": _thin(curve[c]),
        }
    return res


def pacing_summary(by_campaign: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Pacing errors over campaign-days: `end_error` = |spend - budget| / budget at the
    end of the day; `curve_error` = mean over the day's impressions of |spent share of
    the budget - elapsed share of the day| (deviation from the even spend curve).
    Only campaign-days whose impressions on offer are worth at least the budget count
    (a day cut short by the end of the log cannot be spent by any policy); the others
    are counted as `unspendable_days`."""
    days = [d for c in by_campaign.values() for d in c["days"].values()]
    counted = [d for d in days if d["spendable"]]
    end = [d["end_error"] for d in counted if d["end_error"] is not None]
    curve = [d["curve_error"] for d in counted]
    return {
        "campaign_days": len(curve),
        "unspendable_days": len(days) - len(counted),
        "end_error_mean": round(sum(end) / len(end), 6) if end else None,
        "end_error_max": round(max(end), 6) if end else None,
        "curve_error_mean": round(sum(curve) / len(curve), 6) if curve else None,
        "curve_error_max": round(max(curve), 6) if curve else None,
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 6) if b > 0 else None


def _thin(points: list[list[float]]) -> list[list[float]]:
    step = max(1, math.ceil(len(points) / CURVE_POINTS))
    out = points[::step]
    if points and out[-1] is not points[-1]:
        out.append(points[-1])
    return out


def equal_spend_scale(bids: Sequence[float], prices: Sequence[float], target: float) -> float:
    """The scale at which `bids` would spend `target`, the budget aside, to the
    closest impression: bids x s win exactly the impressions whose price / bid <= s,
    so the spend at every scale is read off those ratios in order (`spend_steps`, as
    the constant bid is found), and the step closest to `target` is taken (on a tie,
    the one above it).

    The budget aside, as the constant bid is found (the highest bid whose day's
    spend stays within the budget): that spend grows with the scale. Spend under the
    budget does not: past the scale where the budget binds, a larger scale spends the
    same budget earlier in the day on fewer, dearer impressions, and a target just
    short of the budget can be out of reach. Closest, not at least `target` x (1 - a
    tolerance): that would hand the scaled policy up to the tolerance less spend than
    the policy it is compared with.

    >>> s = equal_spend_scale([1, 2, 3, 4], [2.5] * 4, 5.0)
    >>> 2.5 / 3 <= s < 2.5 / 2      # wins the bids of 3 and 4 only
    True
    >>> s = equal_spend_scale([1, 2, 3, 4], [2.5] * 4, 5.5)
    >>> 2.5 / 3 <= s < 2.5 / 2      # 5.0 is closer to 5.5 than 7.5 is
    True
    """
    if target <= 0 or max(bids, default=0.0) <= 0:
        return 1.0
    steps = spend_steps((p / b, p) for b, p in zip(bids, prices, strict=True) if b > 0)
    scale, gap = 0.0, target  # a scale of 0 wins nothing (every price is > 0)
    for ratio, spent in steps:
        if abs(spent - target) <= gap:
            scale, gap = ratio, abs(spent - target)
        if spent >= target:
            break
    return scale * (1 + 1e-9)  # b x (p / b) can round below p


def _per_campaign(
    imps: Sequence[Impression], key: Callable[[Impression], Any]
) -> dict[Any, list[int]]:
    groups: dict[Any, list[int]] = {}
    for n, imp in enumerate(imps):
        groups.setdefault(key(imp), []).append(n)
    return groups


def scaled_to_spend(
    imps: Sequence[Impression],
    bids: Sequence[float],
    prices: Sequence[float],
    targets: Mapping[Any, float],
    key: Callable[[Impression], Any],
) -> tuple[list[float], dict[Any, float]]:
    """`bids` with one equal-spend scale per group (`key`: campaign or campaign-day)."""
    out = list(bids)
    scales: dict[Any, float] = {}
    for k, idx in sorted(_per_campaign(imps, key).items()):
        sb, sp = [bids[i] for i in idx], [prices[i] for i in idx]
        s = scales[k] = equal_spend_scale(sb, sp, targets.get(k, 0.0))
        for i in idx:
            out[i] = bids[i] * s
    return out, scales


def simulate(
    imps: Sequence[Impression],
    clicks: Sequence[tuple[str, str, int]],
    orders: Sequence[Order],
    p: BidSimParams | None = None,
    budgets: Mapping[str, float] | None = None,
    truth: Mapping[str, tuple[float, float]] | None = None,
    closed_loop: Sequence[bool] | None = None,
    budget_source: str = "budget_fraction",
) -> dict[str, Any]:
    """Constant, adjusted (at equal spend) and, with `truth`, oracle; JSON-ready.

    `budgets` are the daily budgets the engine paced against (default: from the
    prices and `budget_fraction`); `closed_loop` the wins of the replay itself (the
    adjusted policy unscaled), reported to show the engine's own pacing."""
    p = p or BidSimParams()
    order = sorted(range(len(imps)), key=lambda n: (imps[n].ts, imps[n].impression_id))
    imps = [imps[n] for n in order]
    if not imps:
        return {"impressions": 0, "params": _params(p), "policy": None, "baseline": None}
    prices = [market_price(i, p) for i in imps]
    by_day: dict[tuple[str, int], list[float]] = {}
    for imp, price in zip(imps, prices, strict=True):
        by_day.setdefault((imp.campaign_id, imp.ts // DAY_MS), []).append(price)
    if budgets is None:
        budgets = budgets_from_prices({k: sum(v) for k, v in by_day.items()}, p.budget_fraction)
    constant = constant_bids(by_day, budgets)
    joined = joined_clicks(imps, clicks, p.click_window_ms)
    base = [constant[(i.campaign_id, i.ts // DAY_MS)] for i in imps]
    baseline = run_policy(imps, base, prices, budgets, joined, orders, p, truth)
    per_day = {
        (c, int(d)): v["spend"]
        for c, b in baseline.by_campaign.items()
        for d, v in b["days"].items()
    }

    def day_of(i: Impression) -> tuple[str, int]:
        return (i.campaign_id, i.ts // DAY_MS)

    out: dict[str, Any] = {
        "impressions": len(imps),
        "clicked_impressions": len(joined),
        "params": _params(p),
        "market_price": price_model(
            sum(i.cost > 0 for i in imps), sum(i.cost <= 0 for i in imps), p
        ),
        "budgets": {
            "source": budget_source,
            "daily": {c: round(v, 6) for c, v in sorted(budgets.items())},
        },
        "constant_bids": {f"{c}@{d}": round(v, 6) for (c, d), v in sorted(constant.items())},
        "baseline": baseline.summary(),
    }
    for name, mults in (
        ("policy", [i.multiplier for i in imps]),
        ("policy_stream", [i.stream_multiplier for i in imps]),
    ):
        raw = [b * m for b, m in zip(base, mults, strict=True)]
        bids, scales = scaled_to_spend(imps, raw, prices, per_day, day_of)
        res = run_policy(imps, bids, prices, budgets, joined, orders, p, truth).summary()
        values = sorted(scales.values())
        res["equal_spend_scale"] = {
            "days": len(values),
            "p10": round(values[len(values) // 10], 6),
            "median": round(values[len(values) // 2], 6),
            "p90": round(values[len(values) * 9 // 10], 6),
        }
        res["spend_vs_baseline"] = _ratio(res["spend"], baseline.spend)
        out[name] = res
    if closed_loop is not None:
        won = [closed_loop[n] for n in order]
        # The replay's own wins: the engine's pacing alone, before any equal-spend scale.
        loop = [price * 2.0 if w else 0.0 for price, w in zip(prices, won, strict=True)]
        out["closed_loop"] = run_policy(
            imps, loop, prices, budgets, joined, orders, p, truth
        ).summary()
    if truth is not None:
        pc = [truth.get(i.impression_id, (0.0, 0.0))[0] for i in imps]
        bids, _ = scaled_to_spend(imps, pc, prices, per_day, day_of)
        out["oracle"] = run_policy(imps, bids, prices, budgets, joined, orders, p, truth).summary()
        out["oracle"]["bids"] = "proportional to the true click probability"
        pv = [pc[n] * truth.get(i.impression_id, (0.0, 0.0))[1] for n, i in enumerate(imps)]
        bids, _ = scaled_to_spend(imps, pv, prices, per_day, day_of)
        out["oracle_value"] = run_policy(
            imps, bids, prices, budgets, joined, orders, p, truth
        ).summary()
        out["oracle_value"]["bids"] = "proportional to the true p_click x p_conversion"
        out["gain_captured"] = gain_captured(out)
    out["equal_spend"] = {
        "tolerance": p.spend_tolerance,
        "per": "campaign-day",
        "within": all(
            abs(out["policy"]["campaigns"][c]["days"][str(d)]["spend"] - s) <= p.spend_tolerance * s
            for (c, d), s in per_day.items()
        ),
    }
    return out


def gain_captured(sim: Mapping[str, Any]) -> dict[str, float | None]:
    """(adjusted - constant) / (oracle - constant): in expected and in realised clicks
    against the click oracle, and in expected conversions against the value oracle
    (bids in proportion to the true p_click x p_conversion; within a campaign the
    order value does not depend on the impression, so this is the value's gain)."""
    out: dict[str, float | None] = {}
    for key, oracle in (
        ("expected_clicks", "oracle"),
        ("clicks", "oracle"),
        ("expected_conversions", "oracle_value"),
    ):
        if oracle not in sim:
            continue
        c, a, o = (sim[k][key] for k in ("baseline", "policy", oracle))
        out[key] = round((a - c) / (o - c), 4) if o != c else None
    return out


def _params(p: BidSimParams) -> dict[str, Any]:
    return {
        "budget_fraction": p.budget_fraction,
        "price_mu": round(p.price_mu, 6),
        "price_sigma": p.price_sigma,
        "seed": p.seed,
        "spend_tolerance": p.spend_tolerance,
    }
