"""Bid multipliers from predicted value, and budget pacing per campaign.

The pacer is campaign-wide: it lives in the shared knowledge and is fed the spend of
every partition, so it paces the campaign's whole daily budget however its users and
traffic are spread over partitions.

>>> from online_models.events import Campaign
>>> c = Campaign(campaign_id="c1", daily_budget=240.0, min_multiplier=0.5, max_multiplier=2.0)
>>> pacer = Pacer(gain=0.8, low=0.0, high=2.0)
>>> noon = 12 * 3_600_000
>>> round(pacer.spend(c, 200.0, noon), 3)    # 200 spent, 120 due by noon: slow down
0.467
>>> pacer.spend(c, 50.0, noon + 1)            # budget exhausted: stop
0.0
>>> clip_multiplier(value=3.0, average=1.0, campaign=c)   # clipped to max
2.0
"""

from __future__ import annotations

from typing import Any

from online_models.events import Campaign

DAY_MS = 86_400_000
MIN_TARGET_SHARE = 0.02  # early in the day the even-spend target is ~0: don't divide by it
SMOOTHING = 0.3


def clip_multiplier(value: float, average: float, campaign: Campaign) -> float:
    """Value relative to the campaign's average value, clipped to the campaign's range."""
    raw = value / average if average > 0 else 1.0
    return min(max(raw, campaign.min_multiplier), campaign.max_multiplier)


class CampaignPace:
    __slots__ = ("day", "factor", "spend")

    def __init__(self) -> None:
        self.day = -1
        self.spend = 0.0
        self.factor = 1.0


class Pacer:
    """Proportional controller: spend ahead of an even spend of the budget lowers the
    factor, behind raises it; an exhausted budget or inactive campaign gives 0."""

    def __init__(self, gain: float, low: float, high: float) -> None:
        self.gain = gain
        self.low = low
        self.high = high
        self.campaigns: dict[str, CampaignPace] = {}

    def factor(self, campaign_id: str) -> float:
        pace = self.campaigns.get(campaign_id)
        return pace.factor if pace else 1.0

    def spend(self, campaign: Campaign, cost: float, ts: int) -> float:
        pace = self.campaigns.setdefault(campaign.campaign_id, CampaignPace())
        day = ts // DAY_MS
        if day > pace.day:
            pace.day, pace.spend = day, 0.0
        if day == pace.day:
            pace.spend += cost
        budget = campaign.daily_budget
        if not campaign.active or pace.spend >= budget:
            pace.factor = 0.0
            return pace.factor
        target = budget * max((ts % DAY_MS) / DAY_MS, MIN_TARGET_SHARE)
        raw = 1.0 + self.gain * (1.0 - pace.spend / target)
        raw = min(max(raw, self.low), self.high)
        pace.factor = round((1 - SMOOTHING) * pace.factor + SMOOTHING * raw, 6)
        if pace.spend > target * 1.5:
            pace.factor = min(pace.factor, raw)
        return pace.factor

    def spend_ratio(self, campaign: Campaign, ts: int) -> float:
        """Spend today / even-spend target so far (1.0 is on pace)."""
        pace = self.campaigns.get(campaign.campaign_id)
        if pace is None or pace.day != ts // DAY_MS:
            return 0.0
        budget = campaign.daily_budget
        return pace.spend / (budget * max((ts % DAY_MS) / DAY_MS, MIN_TARGET_SHARE))

    def to_state(self) -> dict[str, Any]:
        return {c: [p.day, p.spend, p.factor] for c, p in self.campaigns.items()}

    def load_state(self, s: dict[str, Any]) -> None:
        for c, (day, spend, factor) in s.items():
            p = self.campaigns.setdefault(c, CampaignPace())
            p.day, p.spend, p.factor = int(day), float(spend), float(factor)


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
