"""Budget pacing and bid multipliers.

The pacing factor multiplies every bid of a campaign: a controller that is off by a
little over- or under-spends real money all day. These tests pin the controller's
arithmetic (hand-computed), its bounds, the daily reset in UTC event time, the
campaign-wide budget, and the hysteresis that limits output volume.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import orjson
import pytest

from online_models.bidding import (
    DAY_MS,
    CampaignPace,
    Pacer,
    TrafficProfile,
    ValueAverage,
    clip_multiplier,
)
from online_models.config import EngineConfig
from online_models.engine import PartitionEngine
from online_models.events import Campaign
from online_models.outputs import Origin

HOUR = 3_600_000
DAY0 = (1_700_000_000_000 // DAY_MS) * DAY_MS  # a UTC midnight
NOON = DAY0 + 12 * HOUR


PACER_KW: dict[str, Any] = {"gain": 0.5, "low": 0.1, "high": 4.0, "integral": 0.3}


def pacer(**over: Any) -> Pacer:
    return Pacer(**{**PACER_KW, **over})


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


def market_day(
    p: Pacer, c: Campaign, day0: int, natural: float, steps: int = 1440, noise: int = 0
) -> tuple[list[float], list[float]]:
    """One day of a market that answers the factor: every minute, spend
    natural/1440 x factor^2 (a bid 10 % higher wins ~20 % more), with a seeded
    +-50 % wobble; the factors and the cumulative spend after each minute."""
    import random

    rng = random.Random(noise)
    factors, spent, total = [], [], 0.0
    f = p.factor(c.campaign_id, day0)
    for minute in range(steps):
        cost = natural / 1440 * f**2 * (1 + 0.5 * (2 * rng.random() - 1) if noise else 1)
        cost = min(cost, max(c.daily_budget - total, 0.0))
        total += cost
        f = p.spend(c, cost, day0 + minute * 60_000)
        factors.append(f)
        spent.append(total)
    return factors, spent


@pytest.mark.parametrize("natural", [240.0, 120.0, 480.0, 960.0])
def test_closed_loop_spends_the_budget_evenly(natural: float) -> None:
    """Against a market whose natural spend is 0.5x to 4x the budget, the pacer lands
    the day within 5 % of the budget and within 5 % of the even curve on average
    (after one day to learn the level, which it carries over), never 0 while budget
    remains, never outside its bounds, with small steps."""
    p, c = pacer(), campaign()
    market_day(p, c, DAY0, natural, noise=1)  # day 1: learning the level
    factors, spent = market_day(p, c, DAY0 + DAY_MS, natural, noise=2)
    assert abs(spent[-1] - 240.0) / 240.0 <= 0.05
    curve = [abs(s / 240.0 - (m + 1) / 1440) for m, s in enumerate(spent)]
    assert sum(curve) / len(curve) <= 0.05
    left = [f for f, s in zip(factors, spent, strict=True) if s < 240.0 - 1e-9]
    assert all(0.1 <= f <= 4.0 for f in left)
    steps = [abs(b - a) / a for a, b in pairwise(left)]
    assert max(steps) < 0.1  # smooth: no minute moves the factor by 10 % or more


def diurnal_day(p: Pacer, c: Campaign, day0: int, per_request: float) -> list[float]:
    """One day of a market with a daily peak: 1 bid request a minute from 0:00 to
    12:00, 6 a minute after, each spending per_request x factor^2; the factor
    after each request."""
    factors, total = [], 0.0
    f = p.factor(c.campaign_id, day0)
    for minute in range(1440):
        for r in range(1 if minute < 720 else 6):
            cost = min(per_request * f**2, max(c.daily_budget - total, 0.0))
            total += cost
            f = p.spend(c, cost, day0 + minute * 60_000 + r)
            factors.append(f)
    return factors


def test_traffic_time_keeps_the_bid_flat_through_a_daily_peak() -> None:
    """Where the traffic has a daily peak, a constant bid spends the budget in step
    with the traffic. Planned in traffic time (after one day to learn the campaign's
    hour-of-day profile) the factor stays within 10 % of one level until the last hour;
    planned in clock time it has to overbid while traffic is thin and underbid at the
    peak (measured: 1.07 against 3.06 between the highest and lowest factor)."""
    c = campaign(daily_budget=240.0)
    per_request = 240.0 / (720 + 6 * 720)  # spends the budget exactly at factor 1
    spans = {}
    for traffic_time in (True, False):
        p = pacer(traffic_time=traffic_time)
        for d in range(3):  # learn the level and the profile
            diurnal_day(p, c, DAY0 + d * DAY_MS, per_request)
        factors = diurnal_day(p, c, DAY0 + 3 * DAY_MS, per_request)
        assert p.campaigns["c1"].spend == pytest.approx(240.0, rel=0.05)
        day = factors[:-360]  # the last hour: the floor of the remaining time
        spans[traffic_time] = max(day) / min(day)
    assert spans[True] < 1.1
    assert spans[False] > 2.0


def test_days_on_budget_settle_the_gains_and_a_miss_resets_them() -> None:
    """After days that ended on budget the gains shrink (1/2, 1/3, ... down to
    `settle`): in the same noisy market the factor wobbles less through the day and
    the day still lands on its budget. A day that misses its budget puts the gains
    back to full."""
    c = campaign()
    spans = {}
    for settle in (1.0, 0.25):
        p = pacer(settle=settle)
        for d in range(4):  # a level learned, days on budget
            market_day(p, c, DAY0 + d * DAY_MS, 300.0, noise=d + 1)
        assert p.campaigns["c1"].days == 4
        factors, spent = market_day(p, c, DAY0 + 4 * DAY_MS, 300.0, noise=9)
        assert abs(spent[-1] - 240.0) / 240.0 <= 0.05
        day = [math.log(f) for f in factors[60:-60]]
        spans[settle] = max(day) - min(day)
    assert spans[0.25] < 0.6 * spans[1.0]
    p.spend(c, 0.0, DAY0 + 5 * DAY_MS)  # day 6 opens after a day on budget
    assert p.campaigns["c1"].days == 6
    p.spend(c, 0.0, DAY0 + 6 * DAY_MS)  # day 6 spent nothing: a miss
    assert p.campaigns["c1"].days == 1


def test_a_new_day_opens_at_the_last_days_mean_level() -> None:
    """A day whose last hours chase the rest of the budget (the factor climbs to its
    bound) does not open the next day at that bound but at the day's mean level."""
    p, c = pacer(), campaign()
    for minute in range(0, 20 * 60):  # on plan for 20 hours: level ~0
        p.spend(c, 10.0 / 60, DAY0 + minute * 60_000)
    for minute in range(20 * 60, 24 * 60):  # then nothing won: the factor climbs
        f = p.spend(c, 0.0, DAY0 + minute * 60_000)
    assert f > 2.0 and p.campaigns["c1"].level > 0.3
    opening = p.factor("c1", DAY0 + DAY_MS)
    assert 1.0 <= opening < 1.3
    assert p.spend(c, 0.0, DAY0 + DAY_MS) == pytest.approx(opening, rel=0.02)


def test_on_plan_stays_near_one() -> None:
    """Spending exactly the even rate (10/h, one impression a minute) keeps the
    factor at 1."""
    p, c = pacer(), campaign()
    p.spend(c, 0.0, DAY0)
    factors = [p.spend(c, 10.0 / 60, DAY0 + m * 60_000) for m in range(1, 20 * 60)]
    assert all(f == pytest.approx(1.0, abs=0.03) for f in factors)


def test_behind_rises_and_ahead_falls_within_bounds() -> None:
    """Spending nothing for hours raises the factor up to `high`, not beyond; spending
    far ahead lowers it down to `low`, never to 0 while budget is left."""
    p, c = pacer(), campaign(daily_budget=10_000.0)
    up = [p.spend(c, 0.0, DAY0 + m * 10 * 60_000) for m in range(60)]
    assert up == sorted(up) and up[-1] == 4.0 and max(up) <= 4.0
    q = pacer()
    down = [q.spend(c, 50.0, DAY0 + m * 60_000) for m in range(1, 180)]  # 7x the plan
    assert min(down) == pytest.approx(0.1) and all(f > 0 for f in down)


def test_anti_windup_recovers_at_once() -> None:
    """Held at its upper bound all morning (nothing to buy), the controller drops
    below 1 within two hours of spending 9x too fast: the integral did not wind up
    (unclamped, six hours at +2 would have taken it to ln 4 + 3.6)."""
    p, c = pacer(), campaign()
    for m in range(0, 6 * 60, 10):
        p.spend(c, 0.0, DAY0 + m * 60_000)
    assert p.factor("c1") == 4.0
    f = [p.spend(c, 2.0, DAY0 + 6 * HOUR + m * 60_000) for m in range(1, 121)]
    assert f[-1] < 1.0


def test_shortfall_is_re_planned_over_the_rest_of_the_day() -> None:
    """Nothing spent by noon: the required rate is the whole budget over the 12 hours
    left (20/h), not the even curve's catch-up; spending 20/h from then on is on
    plan, so the factor settles instead of climbing."""
    p, c = pacer(), campaign()
    p.spend(c, 0.0, NOON)
    pace = p.campaigns["c1"]
    assert pace.rate == pytest.approx(240.0 / (12 * HOUR))  # taken as on plan
    pace.level = 0.0
    f = [p.spend(c, 20.0 / 6, NOON + k * 10 * 60_000) for k in range(1, 36)]
    assert all(0.85 <= x <= 1.15 for x in f)


def test_budget_exhausted_gives_zero_for_the_rest_of_the_day() -> None:
    """Once today's spend reaches the budget the factor is 0 (stop bidding) until
    midnight; the next day opens at the learned level, not at 0."""
    p = pacer()
    assert p.spend(campaign(), 239.0, NOON) > 0.0
    assert p.spend(campaign(), 1.0, NOON + 1) == 0.0
    assert p.spend(campaign(), 0.0, DAY0 + 23 * HOUR) == 0.0
    assert p.factor("c1") == 0.0 and p.factor("c1", DAY0 + 23 * HOUR) == 0.0
    assert p.factor("c1", DAY0 + DAY_MS) > 0.0


def test_inactive_campaign_gives_zero() -> None:
    """A paused campaign (active=False) paces at 0 whatever its spend."""
    assert pacer().spend(campaign(active=False), 0.0, NOON) == 0.0


def test_new_utc_day_resets_spend_and_late_spend_does_not_count() -> None:
    """Spend is per UTC day of event time; a late impression from yesterday does not
    count against today's budget."""
    p, c = pacer(), campaign()
    assert p.spend(c, 240.0, DAY0 + 23 * HOUR) == 0.0
    assert p.spend(c, 0.1, DAY0 + DAY_MS + 30 * 60_000) > 0.0
    assert p.campaigns["c1"].spend == pytest.approx(0.1)
    p.spend(c, 100.0, DAY0 + 23 * HOUR)
    assert p.campaigns["c1"].spend == pytest.approx(0.1)


def test_spend_ratio_is_against_the_even_curve() -> None:
    """spend / (budget x elapsed share of the day), the share floored at 30 minutes."""
    p, c = pacer(), campaign()
    assert p.spend_ratio(c, DAY0) == 0.0
    p.spend(c, 60.0, NOON)
    assert p.spend_ratio(c, NOON) == pytest.approx(0.5)
    assert p.state(c, NOON) == {"spend": 60.0, "budget": 240.0, "even_target": 120.0,
                                "factor": p.factor("c1")}  # fmt: skip


def test_pacing_is_against_the_whole_daily_budget() -> None:
    """The pacer is campaign-wide (fed by every partition's spend): the budget is
    exhausted at 240 in all, not at a partition's 240 / partitions."""
    p = pacer()
    assert p.spend(campaign(), 59.0, NOON) > 0.0
    assert p.spend(campaign(), 60.0, NOON + 1) > 0.0
    assert p.spend(campaign(), 121.0, NOON + 2) == 0.0  # 240 in all


def test_announcements_have_hysteresis() -> None:
    """A partition announces the campaign-wide factor once per move larger than
    threshold * the factor it last announced (floored at 0.1), so pacing updates are
    not emitted on every impression."""
    eng = PartitionEngine(EngineConfig(partitions=1), 0)
    pace = eng.knowledge.pacer.campaigns["c1"] = CampaignPace()
    pace.day = NOON // DAY_MS
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
        eng.bids.announce_pacing(campaign(), NOON, Origin("src", "src#0"), out)
        assert bool(out) is moved, factor
    assert eng.bids.pacing_sent["c1"] == 0.006


def test_pacer_state_round_trip() -> None:
    """Pacing survives a snapshot through JSON: day, spend, factor, level, rate, and
    the site's traffic profile (saved beside it by the knowledge); a snapshot from
    before issue 11 (day, spend, factor) still loads."""
    p = pacer()
    p.spend(campaign(), 0.0, NOON - DAY_MS)  # yesterday: a traffic profile to carry
    p.spend(campaign(), 0.0, NOON - HOUR)
    p.spend(campaign(), 150.0, NOON)
    q = Pacer.from_state(orjson.loads(orjson.dumps(p.to_state())), **PACER_KW)
    q.traffic = TrafficProfile.from_state(
        orjson.loads(orjson.dumps(p.traffic.to_state())), decay=p.traffic.decay
    )
    assert q.to_state() == p.to_state()
    assert q.traffic.to_state() == p.traffic.to_state()
    assert q.spend(campaign(), 10.0, NOON + 1) == p.spend(campaign(), 10.0, NOON + 1)
    old = Pacer.from_state({"c1": [NOON // DAY_MS, 150.0, 0.5]}, **PACER_KW)
    assert old.factor("c1") == 0.5 and old.campaigns["c1"].spend == 150.0


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
    """mean <- mean + max(alpha, 1/n) * (value - mean), one mean per campaign: the plain
    mean of the first 1/alpha values, then exponentially weighted (10, 20 -> 15; then
    with alpha 0.25 from the 4th value on)."""
    v = ValueAverage(alpha=0.25)
    assert v.update("c1", 10.0) == 10.0
    assert v.update("c1", 20.0) == pytest.approx(15.0)
    assert v.update("c1", 0.0) == pytest.approx(10.0)
    assert v.update("c1", 10.0) == pytest.approx(10.0)
    assert v.update("c1", 30.0) == pytest.approx(15.0)  # 1/5 < alpha: 10 + 0.25 x 20
    assert v.update("c2", 3.0) == 3.0
    assert v.means == {"c1": pytest.approx(15.0), "c2": 3.0}
    w = ValueAverage.from_state(orjson.loads(orjson.dumps(v.to_state())), alpha=0.25)
    assert w.update("c1", 35.0) == v.update("c1", 35.0)
    old = ValueAverage.from_state({"means": {"c1": 10.0}}, alpha=0.25)  # before counts: warm
    assert old.update("c1", 20.0) == pytest.approx(12.5)


def test_pacing_is_re_planned_as_time_passes_without_spend() -> None:
    """A campaign whose bids win nothing gets no Spend updates; the knowledge still
    re-plans it every minute of event time, so its factor rises instead of staying
    where it was when the last impression was won."""
    from online_models.knowledge import SharedKnowledge
    from online_models.knowledge_updates import Spend

    c = campaign(daily_budget=10_000.0)
    k = SharedKnowledge(EngineConfig(partitions=1), {"c1": c})
    k.submit([Spend("c1", NOON, 1.0)], now=NOON)
    before = k.pacing_factor("c1", NOON)
    for m in range(1, 120):
        k.advance(NOON + m * 60_000)  # other campaigns' events move the clock
    assert k.pacing_factor("c1", NOON + 120 * 60_000) > before * 1.2  # 1.42 measured
