"""The `make run` demo's pacing: two demo days of its synthetic stream through the
offline engine (`online_models.runner.Runner`, the worker's domain code) in the
demo's closed loop (its ad server shows an ad only when bid x multiplier clears the
price, and only those impressions reach the engine), with the ad server reading the
engine's bid adjustments late, as it does from a worker that lags behind.

Before the fix the pacing factor of a campaign that had stopped winning was never
announced again (it travelled only with the campaign's own impressions and the
re-pricing of users who saw it within the hour), so the ad server kept the stale low
factor and the campaign spent nothing for the rest of the day (issue 20: c2 and c3
frozen at x0.36 / x0.23 on day 2).

Also the demo's rate throttle and its screen (rendered to text).
"""

from __future__ import annotations

import pytest

from backtest.demo_market import closed_loop, demo_budgets
from online_models.config import EngineConfig
from online_models.events import AdImpression, Campaign, ClickEvent
from online_models.outputs import BidAdjustment
from online_models.runner import Runner
from streams.demo import LAG_HIGH, Throttle
from streams.demo_screen import CampaignLine, View, render_text

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
USERS = 200  # per 6-hour segment (the demo's 500, scaled down with the budgets)
# Records the ad server reads behind the engine: the most the demo's throttle lets the
# worker fall behind (it slows the stream above that; the busy machine was 26,000).
LAG = LAG_HIGH


@pytest.mark.timeout(900)  # ~1 minute alone; two shared cores under the full suite
def test_two_demo_days_spend_every_campaign_budget_within_10_percent() -> None:
    days = closed_loop(2, lag=LAG, n_users=USERS)
    budgets = demo_budgets(USERS)
    assert len(days) == 2
    for day, spend in enumerate(days):
        shares = {c: spend.get(c, 0.0) / b for c, b in budgets.items()}
        assert all(0.9 <= s <= 1.0 + 1e-9 for s in shares.values()), (day, shares)


def test_a_campaign_that_wins_nothing_still_hears_its_factor_rise() -> None:
    """One impression of c2 at midnight, then only site traffic: the factor the engine
    plans for an idle c2 rises, and every rise is announced (user_id None) although no
    impression of c2 and no user re-pricing it carries it."""
    r = Runner(EngineConfig(partitions=2))
    r.set_campaign(Campaign(campaign_id="c2", daily_budget=1000.0))
    t0 = 1_700_000_000_000 // DAY_MS * DAY_MS
    r.feed(
        "ad-impressions",
        AdImpression(impression_id="i", ts=t0, user_id="u0", campaign_id="c2", bid=1.0, cost=1.0),
    )
    announced = []
    for k in range(1, 4 * 60):  # a view a minute for 4 hours
        ts = t0 + k * 60_000
        ev = ClickEvent(event_id=f"e{k}", ts=ts, user_id=f"v{k}", type="view", item_id="x")
        for o in r.feed("clickstream", ev).outputs:
            if isinstance(o, BidAdjustment) and o.user_id is None:
                announced.append((ts, o.pacing_factor))
    late = [f for ts, f in announced if ts > t0 + 2 * HOUR_MS]  # past campaign_active_ms
    assert late, announced
    assert late[-1] > 1.0  # behind plan all along: the factor rose
    now = r.knowledge.pacing_factor("c2", t0 + 4 * HOUR_MS - 60_000)
    assert abs(late[-1] - now) <= r.cfg.pacing_threshold * now  # within the hysteresis


def test_throttle_slows_while_lag_grows_and_recovers() -> None:
    t = Throttle(1000.0)
    for lag in (LAG_HIGH + 100, LAG_HIGH + 500, LAG_HIGH + 900, LAG_HIGH + 1500, LAG_HIGH + 3000):
        t.observe(lag)
    assert t.rate < 500 and t.growing
    for _ in range(40):
        t.observe(100)
    assert t.rate == 1000.0 and not t.growing


def test_screen_flags_an_idle_campaign_and_shows_samples_whole() -> None:
    bid = {
        "user_id": "u7",
        "campaign_id": "c2",
        "multiplier": 0.8,
        "pacing_factor": 0.5,
        "p_click": 0.0134,
        "p_conversion": 0.0521,
        "expected_revenue": 41.2,
        "reason": "value_moved",
        "gated": [],
        "top_features": [
            {"model": "click", "feature": "campaign=c2", "contribution": 0.41},
            {"model": "click", "feature": "device=mobile", "contribution": -0.2},
            {"model": "conversion", "feature": "region=eu", "contribution": 0.1},
        ],
    }
    v = View(
        clock_ms=DAY_MS + 9 * HOUR_MS,
        dead_letters=30,
        injected=30,
        campaigns=[
            CampaignLine("c1", 900.0, 2450.0, 920.0, 1.02, 60_000),
            CampaignLine("c2", 0.0, 1640.0, 610.0, 0.36, 9 * HOUR_MS),
        ],
        bid=bid,
        recommendation={"user_id": "u7", "strategy": "repeat", "items": [{"item_id": "i1"}]},
    )
    text = render_text(v)
    assert "WARNING: nothing won for 9.0 h of demo time" in text
    assert "30 injected on purpose by the demo, no others" in text
    assert "p_conversion 0.052" in text and "p_click 0.013 " in text
    assert "campaign=c2 +0.41" in text and "region=eu +0.10" in text
    assert "None" not in text
    assert "legend" in text and "value_moved" in text and "repeat" in text
