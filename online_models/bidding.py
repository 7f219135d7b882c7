"""Bid multipliers from predicted value, and budget pacing per campaign.

The pacer is campaign-wide: it lives in the shared knowledge and is fed the spend of
every partition, so it paces the campaign's whole daily budget however its users and
traffic are spread over partitions.

Pacing (per campaign, per UTC day of event time) is a PI controller on the log of
actual spend rate / required spend rate:

* **required rate** = what is left of today's budget spread evenly over what is left
  of the day (re-planned at every update, so an early shortfall is spread over the
  rest of the day instead of being chased at once); the last `MIN_REMAINING_MS` of
  the day count as that long, so the required rate stays finite at midnight;
* **actual rate** = spend, exponentially weighted over `window_ms` of event time;
  at the start of a day it is taken as on plan (no history is no evidence);
* **factor** = exp(level + gain x error), error = ln(required / actual) clipped to
  +-`MAX_ERROR`; `level` integrates `integral` x error per hour and carries over
  from one day to the next (the bid level a campaign needs is learned, not
  re-discovered each morning). Anti-windup: `level` is clamped to [ln low, ln high],
  so a controller held at a bound recovers as soon as the error changes sign.
* The factor is bounded to [low, high] with low > 0, so it is **0 only when today's
  budget is spent** (or the campaign is inactive); an idle or far-ahead campaign
  still bids, lower.

Every impression ticks the controller, also one the campaign did not win (cost 0):
time passing without spend is evidence of underspend.

>>> from online_models.events import Campaign
>>> c = Campaign(campaign_id="c1", daily_budget=240.0)
>>> pacer = Pacer(gain=0.5, low=0.1, high=4.0, integral=0.3, window_ms=2 * HOUR_MS)
>>> pacer.spend(c, 0.0, 0)                  # midnight, nothing spent: on plan
1.0
>>> f = [pacer.spend(c, 2.0, h * HOUR_MS) for h in range(1, 6)]   # 2/h, 10/h needed
>>> 1.0 < f[0] < f[1] < f[2] < f[3] == f[4] == 4.0   # rises while behind, bounded
True
>>> pacer.spend(c, 240.0, 6 * HOUR_MS)      # budget spent: stop for the rest of the day
0.0
>>> pacer.factor("c1", 30 * HOUR_MS) > 0    # a new day, a new budget
True
>>> clip_multiplier(value=3.0, average=1.0, campaign=Campaign(campaign_id="c", max_multiplier=2.0))
2.0
"""

from __future__ import annotations

import math
from typing import Any

from online_models.events import Campaign

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MIN_REMAINING_MS = HOUR_MS // 2
MAX_ERROR = 2.0  # ln(required / actual) beyond +-2 (7x) says no more than 7x does


def clip_multiplier(value: float, average: float, campaign: Campaign) -> float:
    """Value relative to the campaign's average value, clipped to the campaign's range."""
    raw = value / average if average > 0 else 1.0
    return min(max(raw, campaign.min_multiplier), campaign.max_multiplier)


class CampaignPace:
    """One campaign's pacing state: today's spend, the learned level, the rate filter."""

    __slots__ = ("day", "factor", "last_ts", "level", "rate", "spend")

    def __init__(self) -> None:
        self.day = -1
        self.spend = 0.0
        self.factor = 1.0
        self.level = 0.0  # integral term, ln of the factor the campaign needs on plan
        self.rate = -1.0  # spend per ms, exponentially weighted; < 0: not measured today
        self.last_ts = 0


class Pacer:
    """PI controller of each campaign's spend rate (see the module docstring).

    Parameters
    ----------
    gain
        Proportional gain on ln(required / actual rate).
    low, high
        Bounds of the factor; `low` > 0 keeps a campaign with budget left bidding.
    integral
        Integral gain, per hour of event time.
    window_ms
        Time constant of the actual-rate filter (event time).
    """

    def __init__(
        self,
        gain: float,
        low: float,
        high: float,
        integral: float = 0.3,
        window_ms: int = 2 * HOUR_MS,
    ) -> None:
        self.gain = gain
        self.low = max(low, 1e-3)
        self.high = max(high, self.low)
        self.integral = integral
        self.window_ms = max(window_ms, 1)
        self.campaigns: dict[str, CampaignPace] = {}

    def _bounded(self, x: float) -> float:
        return round(min(max(math.exp(x), self.low), self.high), 6)

    def factor(self, campaign_id: str, ts: int | None = None) -> float:
        """The factor in force; at `ts` on a later day than the last update, the new
        day's opening factor (the learned level: yesterday's exhaustion is over)."""
        pace = self.campaigns.get(campaign_id)
        if pace is None:
            return 1.0
        if ts is not None and ts // DAY_MS > pace.day:
            return self._bounded(pace.level)
        return pace.factor

    def spend(self, campaign: Campaign, cost: float, ts: int) -> float:
        """Count an impression's cost (0 for one not won) and re-plan; the new factor."""
        pace = self.campaigns.get(campaign.campaign_id)
        if pace is None:
            pace = self.campaigns[campaign.campaign_id] = CampaignPace()
        day = ts // DAY_MS
        if day < pace.day:
            return pace.factor  # late spend of a past day does not count against today
        if day > pace.day:
            pace.day, pace.spend, pace.rate, pace.last_ts = day, 0.0, -1.0, day * DAY_MS
        pace.spend += cost
        budget = campaign.daily_budget
        left = budget - pace.spend
        if not campaign.active or left <= 0:
            pace.factor = 0.0
            pace.last_ts = max(pace.last_ts, ts)
            return 0.0
        remaining = max(DAY_MS - (ts - day * DAY_MS), MIN_REMAINING_MS)
        required = left / remaining
        dt = max(ts - pace.last_ts, 0)
        pace.last_ts = max(pace.last_ts, ts)
        if pace.rate < 0:
            pace.rate = required  # start of the day: assume on plan
        else:
            pace.rate = pace.rate * math.exp(-dt / self.window_ms) + cost / self.window_ms
        actual = max(pace.rate, required * math.exp(-MAX_ERROR))
        error = min(max(math.log(required / actual), -MAX_ERROR), MAX_ERROR)
        lo, hi = math.log(self.low), math.log(self.high)
        pace.level = min(max(pace.level + self.integral * error * dt / HOUR_MS, lo), hi)
        pace.factor = self._bounded(pace.level + self.gain * error)
        return pace.factor

    def spend_ratio(self, campaign: Campaign, ts: int) -> float:
        """Spend today / the even spend of the budget by `ts` (1.0 is on the even curve)."""
        pace = self.campaigns.get(campaign.campaign_id)
        if pace is None or pace.day != ts // DAY_MS:
            return 0.0
        share = max((ts % DAY_MS) / DAY_MS, MIN_REMAINING_MS / DAY_MS)
        budget = campaign.daily_budget
        return pace.spend / (budget * share) if budget > 0 else 0.0

    def state(self, campaign: Campaign, ts: int) -> dict[str, float]:
        """What an operator needs to see why a campaign bids as it does."""
        pace = self.campaigns.get(campaign.campaign_id)
        today = pace is not None and pace.day == ts // DAY_MS
        spend = pace.spend if pace is not None and today else 0.0
        return {
            "spend": round(spend, 6),
            "budget": campaign.daily_budget,
            "even_target": round(campaign.daily_budget * (ts % DAY_MS) / DAY_MS, 6),
            "factor": self.factor(campaign.campaign_id, ts),
        }

    def to_state(self) -> dict[str, Any]:
        return {
            c: [p.day, p.spend, p.factor, p.level, p.rate, p.last_ts]
            for c, p in self.campaigns.items()
        }

    def load_state(self, s: dict[str, Any]) -> None:
        for c, values in s.items():
            p = self.campaigns.setdefault(c, CampaignPace())
            day, spend, factor, *rest = values  # snapshots before issue 11 hold 3 fields
            p.day, p.spend, p.factor = int(day), float(spend), float(factor)
            if rest:
                p.level, p.rate, p.last_ts = float(rest[0]), float(rest[1]), int(rest[2])


class ValueAverage:
    """Exponentially weighted mean of predicted impression value per campaign."""

    def __init__(self, alpha: float = 0.02) -> None:
        self.alpha = alpha
        self.means: dict[str, float] = {}

    def update(self, campaign_id: str, value: float) -> float:
        mean = self.means.get(campaign_id)
        mean = value if mean is None else mean + self.alpha * (value - mean)
        self.means[campaign_id] = mean
        return mean
