"""Issue 11's bidding goals on the known-model market (backtest/truth.py, its default
size: 3,000 users, 4 days, campaigns buying clicks), replayed through the engine with
the bidding simulation's closed loop: one budget, equal spend, pacing within 5 %, and
bids that capture most of the oracle's gain (the oracle bids in proportion to the true
click probability). About a minute per budget.

The value-objective and Open Bandit figures come from benchmarks/bidding_bench.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from backtest.bidcheck import truth_run
from backtest.truth import TruthParams

GOAL = 0.8  # issue 11: >= 80 % of the oracle's gain over the constant bid


@pytest.fixture(scope="module", params=[0.5, 1 / 16], ids=["budget 1/2", "budget 1/16"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    work: Path = tmp_path_factory.mktemp("truth")
    return truth_run(TruthParams(budget_fraction=request.param, objective="clicks"), work)


def test_one_budget_and_equal_spend(run: dict) -> None:
    """The engine and the simulation use the campaigns' published budgets; the
    adjusted policy and the oracle spend what the constant bid spends (1 %)."""
    assert run["budgets"] == "campaign_events"
    assert run["market_price"] == "recorded_cost"
    assert run["equal_spend"]["within"]
    base = run["baseline"]["spend"]
    for who in ("policy", "oracle"):
        assert abs(run[who]["spend"] - base) <= 0.01 * base


def test_engine_pacing_lands_each_day_on_the_budget(run: dict) -> None:
    """The closed loop (the engine's own pacer, no equal-spend scale): mean end-of-day
    error and mean deviation from the even curve both within 5 %."""
    pacing = run["closed_loop"]["pacing"]
    assert pacing["campaign_days"] >= 18
    assert pacing["end_error_mean"] <= 0.05
    assert pacing["curve_error_mean"] <= 0.05


def test_value_bidding_beats_the_constant_bid(run: dict) -> None:
    """At equal spend the adjusted policy buys more expected clicks than the constant
    bid, and more expected conversions, at least half of each oracle's gain."""
    base = run["baseline"]["expected_clicks"]
    assert run["oracle"]["expected_clicks"] > base * 1.1  # there is a gain to capture
    assert run["policy"]["expected_clicks"] > base
    assert run["gain_captured"]["expected_clicks"] >= 0.5
    assert run["policy"]["expected_conversions"] > run["baseline"]["expected_conversions"]
    assert run["gain_captured"]["expected_conversions"] >= 0.5


def test_value_bidding_captures_most_of_the_oracle_gain(run: dict) -> None:
    """At equal spend, the adjusted policy's gain in expected clicks over the constant
    bid is at least GOAL of the oracle's (measured 0.89 at 1/2, 0.82 at 1/16; on a
    1,500-user, 3-day market, whose click model has learned less, 0.80 / 0.72)."""
    assert run["gain_captured"]["expected_clicks"] >= GOAL
