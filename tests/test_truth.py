"""The known-model market (backtest/truth.py): deterministic, its truth consistent with
its events, and informative enough to tell a good model and good bids from bad ones."""

from __future__ import annotations

from pathlib import Path

from backtest.event_files import merged
from backtest.truth import TruthParams, generate_truth, read_truth, write_truth
from online_models.evaluation import BinaryScore

SMALL = TruthParams(n_users=600, days=2, seed=11)


def test_the_stream_is_deterministic_and_time_ordered() -> None:
    a, b = generate_truth(SMALL), generate_truth(SMALL)
    assert a.events == b.events and a.p_click == b.p_click
    ts = [e["ts"] for t, e in a.events if t != "campaigns"]
    assert ts == sorted(ts)
    assert [t for t, _ in a.events[: SMALL.n_campaigns]] == ["campaigns"] * SMALL.n_campaigns


def test_clicks_follow_the_recorded_probabilities() -> None:
    s = generate_truth(SMALL)
    imps = list(s.impressions())
    clicked = {e["impression_id"] for t, e in s.events if e.get("type") == "ad_click"}
    expected = sum(s.p_click[e["impression_id"]] for e in imps)
    assert abs(len(clicked) - expected) < 4 * expected**0.5  # within 4 sigma of the truth
    score = BinaryScore()
    for e in imps:
        score.update(s.p_click[e["impression_id"]], e["impression_id"] in clicked)
    assert 0.75 < score.auc < 0.9  # informative, far from perfect
    assert 0.95 < score.calibration < 1.05
    orders = [e for t, e in s.events if t == "orders"]
    expected_orders = sum(s.p_click[i] * s.p_conversion[i] for i in s.p_click)
    assert abs(len(orders) - expected_orders) < 4 * expected_orders**0.5 + 5


def test_budgets_are_the_fraction_of_market_price_per_day() -> None:
    s = generate_truth(SMALL)
    for campaign, budget in s.budgets.items():
        prices = sum(e["cost"] for e in s.impressions() if e["campaign_id"] == campaign)
        assert abs(budget - SMALL.budget_fraction * prices / SMALL.days) < 1e-3


def test_written_files_replay_and_read_back(tmp_path: Path) -> None:
    s = generate_truth(TruthParams(n_users=50, days=1, seed=2))
    events, truth = tmp_path / "truth.jsonl.gz", tmp_path / "truth.json"
    write_truth(s, events, truth)
    invalid: dict[str, int] = {}
    decoded = list(merged([events], invalid, {}))  # type: ignore[arg-type]
    assert not invalid and len(decoded) == len(s.events)
    p_click, p_conversion, budgets = read_truth(truth)
    assert p_click == s.p_click and p_conversion == s.p_conversion and budgets == s.budgets
