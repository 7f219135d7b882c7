"""Budget pacing and bid multipliers.

The pacing factor multiplies every bid of a campaign: a controller that is off by a
little over- or under-spends real money all day. These tests pin the controller's
arithmetic (hand-computed), its bounds, the daily reset in UTC event time, the
campaign-wide budget, and the hysteresis that limits output volume.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from online_models.bidding import (
    DAY_MS,
    MIN_TARGET_SHARE,
    CampaignPace,
    Pacer,
    ValueAverage,
    clip_multiplier,
)
from online_models.config import EngineConfig
from online_models.engine import PartitionEngine
from online_models.events import Campaign

HOUR = 3_600_000
DAY0 = (1_700_000_000_000 // DAY_MS) * DAY_MS  # a UTC midnight
NOON = DAY0 + 12 * HOUR


def pacer(**over: Any) -> Pacer:
    kw: dict[str, Any] = {
        "gain": 0.8,
        "low": 0.0,
        "high": 2.0,
        **over,
    }
    return Pacer(**kw)


def campaign(**over: Any) -> Campaign:
    kw: dict[str, Any] = {
        "campaign_id": "c1",
        "daily_budget": 240.0,
        "min_multiplier": 0.5,
        "max_multiplier": 2.0,
        **over,
    }
    return Campaign(**kw)


# Pacing controller -----------------------------------------------------------------


def test_on_pace_keeps_factor_at_one() -> None:
    """Spend equal to the even-spend target (120 of 240 by noon) leaves the factor at
    exactly 1: a campaign on pace is not disturbed."""
    p = pacer()
    assert p.spend(campaign(), 120.0, NOON) == 1.0
    assert p.spend_ratio(campaign(), NOON) == 1.0


def test_ahead_of_even_spend_slows_down() -> None:
    """150 spent by noon (target 120): raw = 1 + 0.8 * (1 - 150/120) = 0.8, smoothed
    0.7 * 1 + 0.3 * 0.8 = 0.94 < 1."""
    p = pacer()
    assert p.spend(campaign(), 150.0, NOON) == pytest.approx(0.94)
    assert p.factor("c1") == pytest.approx(0.94)


def test_far_ahead_cuts_at_once() -> None:
    """Above 1.5x the target the smoothing is skipped: 200 by noon gives the raw factor
    1 + 0.8 * (1 - 200/120) = 0.466667 immediately (the documented example)."""
    assert pacer().spend(campaign(), 200.0, NOON) == pytest.approx(0.466667, abs=1e-6)


def test_behind_even_spend_speeds_up_bounded_by_pacing_max() -> None:
    """30 spent by noon (target 120): raw 1.6, smoothed 1.18 > 1; a very aggressive
    gain cannot push the factor above `high` (pacing_max) however long it is behind."""
    p = pacer()
    assert p.spend(campaign(), 30.0, NOON) == pytest.approx(1.18)
    for k in range(100):
        f = p.spend(campaign(), 0.0, NOON + k)
    assert f == pytest.approx(1.6, abs=1e-4)  # converges to the raw factor
    hot = pacer(gain=5.0)
    factors = [hot.spend(campaign(), 0.0, NOON + k) for k in range(200)]
    assert all(1.0 < f <= 2.0 for f in factors)
    assert factors[-1] == pytest.approx(2.0, abs=1e-4)


def test_budget_exhausted_gives_zero_for_the_rest_of_the_day() -> None:
    """Once today's spend reaches the budget, the factor is 0 (stop bidding), and stays
    0 for further impressions that day."""
    p = pacer()
    assert p.spend(campaign(), 239.0, NOON) > 0.0
    assert p.spend(campaign(), 1.0, NOON + 1) == 0.0
    assert p.spend(campaign(), 0.0, DAY0 + 23 * HOUR) == 0.0
    assert p.factor("c1") == 0.0


def test_inactive_campaign_gives_zero() -> None:
    """A paused campaign (active=False) paces at 0 whatever its spend."""
    assert pacer().spend(campaign(active=False), 0.0, NOON) == 0.0


def test_new_utc_day_resets_spend() -> None:
    """Spend is per UTC day of event time: an exhausted budget is available again after
    midnight. At 00:30 with 0.1 spent (target 240 * 0.5/24 = 5): raw 1 + 0.8 * 0.98 =
    1.784, smoothed from 0: 0.3 * 1.784 = 0.5352."""
    p = pacer()
    c = campaign()
    assert p.spend(c, 240.0, DAY0 + 23 * HOUR) == 0.0
    f = p.spend(c, 0.1, DAY0 + DAY_MS + 30 * 60_000)
    assert f == pytest.approx(0.5352)
    assert p.campaigns["c1"].spend == pytest.approx(0.1)
    # A late impression from yesterday does not count against today's budget.
    p.spend(c, 100.0, DAY0 + 23 * HOUR)
    assert p.campaigns["c1"].spend == pytest.approx(0.1)


def test_target_has_a_floor_right_after_midnight() -> None:
    """At 00:00 the even-spend target would be 0; it is floored at 2% of the budget so
    the first impression of the day is not treated as infinitely ahead of pace."""
    p = pacer()
    assert p.spend_ratio(campaign(), DAY0) == 0.0  # nothing spent yet today
    p.spend(campaign(), 2.4, DAY0)
    assert p.spend_ratio(campaign(), DAY0) == pytest.approx(2.4 / (240 * MIN_TARGET_SHARE))


def test_pacing_is_against_the_whole_daily_budget() -> None:
    """The pacer is campaign-wide (it lives in the shared knowledge, fed by every
    partition's spend): 59 of 240 by noon (target 120) is behind and speeds up, 60
    more in the same second (119) is still on the right side of the target, and the
    budget is exhausted only at 240, not at a partition's 240 / partitions."""
    p = pacer()
    assert p.spend(campaign(), 59.0, NOON) > 1.0
    assert p.spend(campaign(), 60.0, NOON + 1) > 0.0
    assert p.spend(campaign(), 121.0, NOON + 2) == 0.0  # 240 in all


def test_announcements_have_hysteresis() -> None:
    """A partition announces the campaign-wide factor once per move larger than
    threshold * the factor it last announced (floored at 0.1), so pacing updates are
    not emitted on every impression."""
    eng = PartitionEngine(EngineConfig(partitions=1), 0)
    pace = eng.knowledge.pacer.campaigns["c1"] = CampaignPace()
    for factor, moved in [
        (1.04, False),
        (1.06, True),
        (1.10, False),
        (1.12, True),
        (1.12, False),
        (0.0, True),
        (0.004, False),
        (0.006, True),
    ]:
        pace.factor = factor
        out: list[Any] = []
        eng._announce_pacing(campaign(), NOON, "src", out)
        assert bool(out) is moved, factor
    assert eng.pacing_sent["c1"] == 0.006


def test_pacer_state_round_trip() -> None:
    """Pacing survives a snapshot through JSON: same day, spend, factor."""
    p = pacer()
    p.spend(campaign(), 150.0, NOON)
    q = pacer()
    q.load_state(orjson.loads(orjson.dumps(p.to_state())))
    assert q.to_state() == p.to_state()
    assert q.spend(campaign(), 10.0, NOON + 1) == p.spend(campaign(), 10.0, NOON + 1)


# Multipliers -----------------------------------------------------------------------


def test_clip_multiplier_min_max_and_average_zero() -> None:
    """value / average, clipped to the campaign's [min_multiplier, max_multiplier];
    before any average exists (0) the neutral 1.0 is used (then clipped)."""
    c = campaign()
    assert clip_multiplier(3.0, 1.0, c) == 2.0
    assert clip_multiplier(0.1, 1.0, c) == 0.5
    assert clip_multiplier(1.5, 1.0, c) == 1.5
    assert clip_multiplier(5.0, 0.0, c) == 1.0
    assert clip_multiplier(5.0, 0.0, campaign(min_multiplier=1.2)) == 1.2
    assert clip_multiplier(0.0, 0.0, campaign(max_multiplier=0.8, min_multiplier=0.1)) == 0.8


def test_value_average_is_exponentially_weighted() -> None:
    """mean <- mean + alpha * (value - mean), starting at the first value, one mean per
    campaign: 10, then 20 -> 10.2, then 0 -> 9.996."""
    v = ValueAverage(alpha=0.02)
    assert v.update("c1", 10.0) == 10.0
    assert v.update("c1", 20.0) == pytest.approx(10.2)
    assert v.update("c1", 0.0) == pytest.approx(9.996)
    assert v.update("c2", 3.0) == 3.0
    assert v.means == {"c1": pytest.approx(9.996), "c2": 3.0}
