"""Bidding simulation: hand-computed small cases of the market and attribution model."""

from __future__ import annotations

import math
from statistics import median

import pytest

from backtest.bidsim import joined_clicks, run_policy, simulate
from backtest.market import (
    BidSimParams,
    Impression,
    Order,
    constant_bid_for_budget,
    market_price,
)

H = 3_600_000


def imp(
    ts: int,
    iid: str,
    cost: float,
    user: str = "u1",
    campaign: str = "c",
    bid: float = 1.0,
    mult: float = 1.0,
) -> Impression:
    return Impression(ts, iid, user, campaign, bid, cost, mult)


def test_win_when_bid_reaches_market_price_and_pay_the_price() -> None:
    imps = [imp(0, "i1", 0.5), imp(1, "i2", 0.5), imp(2, "i3", 0.5)]
    r = run_policy(imps, [1.0, 0.4, 0.5], [0.5, 0.5, 0.5], {"c": 10.0}, {}, [])
    assert (r.won, r.spend) == (2, 1.0)  # 0.4 < 0.5 loses; a tie (0.5 >= 0.5) wins


def test_budget_exhaustion_skips_what_no_longer_fits() -> None:
    imps = [imp(t, f"i{t}", 0.0) for t in range(4)]
    prices = [0.4, 0.4, 0.4, 0.2]
    r = run_policy(imps, [1.0] * 4, prices, {"c": 1.0}, {}, [])
    # 0.4 + 0.4 = 0.8; the third (1.2) exceeds 1.0; the cheap fourth still fits (1.0).
    assert (r.won, r.spend) == (3, 1.0)


def test_constant_bid_spends_at_most_the_budget() -> None:
    assert constant_bid_for_budget([0.3, 0.1, 0.2, 0.5], 0.6) == 0.3
    assert constant_bid_for_budget([0.2, 0.2, 0.1], 0.3) == 0.1  # both 0.2s or none
    assert constant_bid_for_budget([0.2, 0.2, 0.1], 0.5) == 0.2
    assert constant_bid_for_budget([], 1.0) == 0.0


def test_equal_budget_baseline_scaling() -> None:
    """Budget = fraction x the day's market price; the constant bid spends at most it;
    the adjusted policy (constant bid x multiplier, here neutral) is the same policy."""
    imps = [imp(0, "a", 0.1), imp(1, "b", 0.3), imp(2, "c", 0.2), imp(3, "d", 0.4)]
    out = simulate(imps, [], [], BidSimParams(budget_fraction=0.5))
    budget = 0.5 * (0.1 + 0.3 + 0.2 + 0.4)
    assert (
        out["policy"]["campaigns"]["c"]["budget"]
        == out["baseline"]["campaigns"]["c"]["budget"]
        == pytest.approx(budget)
    )
    assert out["constant_bids"] == {"c@0": 0.2}  # 0.1 + 0.2 = 0.3 <= 0.5 < 0.6
    assert out["baseline"]["won"] == 2 and out["baseline"]["spend"] == pytest.approx(0.3)
    assert out["policy"]["won"] == 2 and out["policy"]["spend"] == pytest.approx(0.3)
    assert out["market_price"]["name"] == "recorded_cost"
    assert out["equal_spend"]["within"]


def test_budgets_are_daily_and_given_budgets_win_over_the_fraction() -> None:
    """Each UTC day has its own budget; budgets handed in (the engine's) are used."""
    day = 86_400_000
    imps = [imp(0, "a", 1.0), imp(1, "b", 2.0), imp(day, "c", 1.0), imp(day + 1, "d", 2.0)]
    out = simulate(imps, [], [], budgets={"c": 1.0})
    assert out["baseline"]["won"] == 2  # one a day
    assert out["budgets"]["daily"] == {"c": 1.0}
    assert out["baseline"]["pacing"]["campaign_days"] == 2


def test_equal_spend_scale_matches_the_constant_and_oracle_beats_it() -> None:
    """An adjusted policy bidding 3x too high is scaled down to the constant's spend;
    with the truth given, the oracle (bids ~ true p) buys more expected clicks at the
    same spend, and the captured gain is reported."""
    imps = [
        imp(t * 1000, f"i{t}", 0.5 + 0.1 * (t % 7) + 0.001 * t, mult=3.0 if t % 2 else 0.3)
        for t in range(40)
    ]  # no two prices alike: the spend moves one impression at a time
    truth = {f"i{t}": (0.2 if t % 2 else 0.01, 0.1) for t in range(40)}
    out = simulate(imps, [], [], BidSimParams(budget_fraction=0.25), truth=truth)
    budget = out["budgets"]["daily"]["c"]
    base = out["baseline"]
    # The constant's spend to within one price (0.5-1.14 here), at most the budget.
    for who in ("policy", "oracle"):
        assert abs(out[who]["spend"] - base["spend"]) <= 1.14
        assert out[who]["spend"] <= budget + 1e-9
    assert out["policy"]["equal_spend_scale"]["median"] < 1.0  # scaled down
    assert out["oracle"]["expected_clicks"] > base["expected_clicks"]
    assert out["policy"]["expected_clicks"] > base["expected_clicks"]
    gain = (out["policy"]["expected_clicks"] - base["expected_clicks"]) / (
        out["oracle"]["expected_clicks"] - base["expected_clicks"]
    )
    assert out["gain_captured"]["expected_clicks"] == pytest.approx(gain, abs=1e-4)


def test_equal_spend_when_the_budget_binds_short_of_the_target() -> None:
    """A constant spending just short of the budget, and a policy bidding high early:
    under the budget its spend cannot reach the constant's at any scale (past the
    binding scale it buys dear impressions early and runs out). The scale is the one
    that spends the constant's spend budget aside, so the policy keeps bidding at a
    sane level all day instead of an unbounded scale."""
    imps = [
        imp(t * 1000, f"i{t}", 1.0 + 0.01 * (t % 10), mult=2.0 if t < 20 else 0.7)
        for t in range(40)
    ]
    out = simulate(imps, [], [], BidSimParams(budget_fraction=0.5))
    base, policy = out["baseline"], out["policy"]
    assert policy["equal_spend_scale"]["p90"] < 10.0
    assert abs(policy["spend"] - base["spend"]) <= 1.1
    assert policy["won"] >= base["won"] - 2
    assert out["equal_spend"]["within"] is (
        abs(policy["spend"] - base["spend"]) <= 0.01 * base["spend"]
    )


def test_clicks_join_by_impression_user_and_window() -> None:
    imps = [imp(0, "i1", 0.1), imp(0, "i2", 0.1, user="u2"), imp(0, "i3", 0.1)]
    clicks = [("i1", "u1", 10), ("i1", "u1", 5), ("i2", "u1", 10), ("i3", "u1", H), ("zz", "u1", 1)]
    # i2 clicked by another user, i3 clicked after the 30-minute window: not joined.
    assert joined_clicks(imps, clicks, H // 2) == {"i1": 5}


def test_conversions_last_touch_within_24h_each_click_once() -> None:
    imps = [imp(0, "i1", 0.1), imp(500, "i2", 0.1), imp(0, "i3", 0.1, user="u2")]
    clicks = {"i1": 10, "i2": 1000, "i3": 20}
    orders = [
        Order(2000, "u1", 50.0),
        Order(3000, "u1", 30.0),
        Order(4000, "u1", 99.0),
        Order(20 + 25 * H, "u2", 70.0),
    ]
    r = run_policy(imps, [1.0] * 3, [0.1] * 3, {"c": 5.0}, clicks, orders)
    # u1: 2000 -> click@1000 (latest), 3000 -> click@10, 4000 -> no click left;
    # u2: the order comes 25 h after the click, outside the 24 h window.
    assert (r.clicks, r.conversions, r.revenue) == (3, 2, 80.0)
    assert r.summary()["roas"] == pytest.approx(80.0 / 0.3)


def test_lost_impression_gets_no_click_or_conversion() -> None:
    imps = [imp(0, "i1", 0.5)]
    r = run_policy(imps, [0.1], [0.5], {"c": 5.0}, {"i1": 10}, [Order(20, "u1", 9.0)])
    assert (r.won, r.clicks, r.conversions, r.revenue) == (0, 0, 0, 0.0)
    assert r.summary()["roas"] is None


def test_pacing_errors_per_campaign_day() -> None:
    """curve_error: mean |spent share of the budget - elapsed share of the day| over
    the day's impressions; end_error: |budget - spend| / budget at the day's end."""
    half = 43_200_000
    imps = [imp(0, "a", 1.0), imp(half, "b", 1.0), imp(2 * half - 1, "c", 1.0)]
    r = run_policy(imps, [2.0] * 3, [1.0] * 3, {"c": 2.0}, {}, [])
    # spend shares 0.5, 1.0, 1.0 against elapsed 0.0, 0.5, ~1.0.
    day = r.by_campaign["c"]["days"]["0"]
    assert day["curve_error"] == pytest.approx((0.5 + 0.5 + 0.0) / 3, abs=1e-6)
    assert day["end_error"] == 0.0 and day["spendable"]
    assert r.summary()["pacing"]["curve_error_mean"] == pytest.approx(1 / 3, abs=1e-6)


def test_lognormal_market_price_is_seeded_and_has_the_configured_median() -> None:
    p = BidSimParams(price_mu=math.log(2.0), price_sigma=0.5, seed=3)
    draws = [market_price(imp(0, f"i{n}", 0.0), p) for n in range(4000)]
    assert draws == [market_price(imp(9, f"i{n}", 0.0), p) for n in range(4000)]
    assert median(draws) == pytest.approx(2.0, rel=0.05)
    other = BidSimParams(price_mu=math.log(2.0), price_sigma=0.5, seed=4)
    assert market_price(imp(0, "i1", 0.0), other) != market_price(imp(0, "i1", 0.0), p)


def test_no_impressions_gives_an_empty_section() -> None:
    assert simulate([], [], [])["policy"] is None
