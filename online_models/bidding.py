"""Bid multipliers from predicted value, and budget pacing per campaign.

The pacer is campaign-wide: it lives in the shared knowledge and is fed the spend of
every partition, so it paces the campaign's whole daily budget however its users and
traffic are spread over partitions.

Pacing (per campaign, per UTC day of event time) is a PI controller on the log of
actual spend rate / required spend rate, both measured in **traffic time**: the
share of the day's site activity expected by then, from the hour-of-day profile of
the days before (`TrafficProfile`, one for the site, of every item interaction and
ad impression the knowledge learns from; uniform on the first day and with uniform
traffic, where traffic time is clock time). Spending evenly in traffic time spends
the budget in step with the opportunities, so the bid a campaign needs stays the
same through the day; spending evenly in clock time would have to overbid at night
and underbid at the daily peak. The profile is the site's, not a campaign's own
impressions: where the impressions topic carries only the impressions won (an ad
server's log), their hours follow the bids themselves, and a profile learned from
them would feed the pacer its own past decisions.

* **required rate** = what is left of today's budget spread evenly over what is left
  of the day's traffic (re-planned at every update, so an early shortfall is spread
  over the rest of the day instead of being chased at once); the last
  `MIN_REMAINING_MS` of the day's traffic count as that long, so the required rate
  stays finite at midnight;
* **actual rate** = spend, exponentially weighted over `window_ms` of event time;
  at the start of a day it is taken as on plan (no history is no evidence);
* **factor** = exp(level + gain x error), error = ln(required / actual) clipped to
  +-`MAX_ERROR`; `level` integrates `integral` x error per hour, and a new day opens
  at the day before's mean level over its traffic (the bid level a campaign needs is
  learned, not re-discovered each morning; the mean, not the last value, because a
  day's last hours chase the last of its budget with a steep required rate).
  Anti-windup: `level` is clamped to [ln low, ln high], so a controller held at a
  bound recovers as soon as the error changes sign.
* **gains**: divided by 1 + the days in a row before today that ended on budget,
  down to `settle` (a learned level leaves noise to correct, and a flat bid buys the
  most for its spend; see `Pacer`).
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
from online_models.snapshot import Restorable

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MIN_REMAINING_MS = HOUR_MS // 2
BINS = 24  # hours of the day in a traffic profile
MAX_ERROR = 2.0  # ln(required / actual) beyond +-2 (7x) says no more than 7x does


def clip_multiplier(value: float, average: float, campaign: Campaign) -> float:
    """Value relative to the campaign's average value, clipped to the campaign's range;
    neutral (1.0, clipped) when either is not a finite positive number: min/max pass a
    NaN through, and one NaN here once reached a bid and the user's stored state.

    >>> c = Campaign(campaign_id="c")
    >>> [clip_multiplier(v, a, c) for v, a in ((1.0, 5e-324), (float("nan"), 1.0), (1.0, 0.0))]
    [3.0, 1.0, 1.0]
    """
    raw = value / average if average > 0 and math.isfinite(average) else 1.0
    if math.isnan(raw):
        raw = 1.0
    return min(max(raw, campaign.min_multiplier), campaign.max_multiplier)


class TrafficProfile(Restorable):
    """A campaign's bid requests per hour of the day, over the days before today
    (each earlier day weighted by `decay` once more), with `prior` requests per hour
    on top so that a young profile is close to uniform.

    >>> t = TrafficProfile()
    >>> t.elapsed(6 * HOUR_MS)                # nothing seen: clock time
    0.25
    >>> for h in range(24):                   # a day busy in its first half only
    ...     t.count(0, h * HOUR_MS, 100 if h < 12 else 0)
    >>> t.count(1, DAY_MS, 1)                 # the next day: yesterday joins the profile
    >>> round(t.elapsed(DAY_MS + 6 * HOUR_MS), 3), round(t.elapsed(DAY_MS + 12 * HOUR_MS), 3)
    (0.495, 0.99)
    """

    __slots__ = ("bins", "day", "decay", "prior", "starts", "today")

    def __init__(self, decay: float = 0.7, prior: float = 1.0) -> None:
        self.decay = decay
        self.prior = prior
        self.day = -1
        self.bins = [0.0] * BINS  # completed days, decayed
        self.today = [0.0] * BINS
        self.starts: list[float] = []  # share of the day's traffic before each hour
        self._plan()

    def _plan(self) -> None:
        """The shares before each hour (and 1.0 at the end), from `bins`: they change
        once a day, while `elapsed` is read at every impression."""
        weights = [b + self.prior for b in self.bins]
        total = sum(weights)
        starts, acc = [0.0], 0.0
        for w in weights:
            acc += w
            starts.append(acc / total)
        self.starts = starts

    def count(self, day: int, ts: int, n: float = 1.0) -> None:
        """Count `n` bid requests at `ts` (of UTC day `day`; later days roll over)."""
        if day > self.day:
            if self.day >= 0:
                keep = self.decay ** (day - self.day - 1)  # empty days in between fade too
                self.bins = [
                    (self.decay * b + t) * keep for b, t in zip(self.bins, self.today, strict=True)
                ]
                self._plan()
            self.today = [0.0] * BINS
            self.day = day
        if day == self.day:
            self.today[(ts % DAY_MS) // HOUR_MS] += n

    def elapsed(self, ts: int) -> float:
        """Share of the day's expected traffic before `ts` (0 at midnight, 1 at the end)."""
        hour, frac = divmod(ts % DAY_MS, HOUR_MS)
        before, after = self.starts[hour], self.starts[hour + 1]
        return before + (after - before) * frac / HOUR_MS

    def to_state(self) -> list[Any]:
        return [self.day, [round(b, 4) for b in self.bins], [round(t, 4) for t in self.today]]

    def _restore(self, s: list[Any]) -> None:
        self.day = int(s[0])
        self.bins = [float(b) for b in s[1]]
        self.today = [float(t) for t in s[2]]
        self._plan()


class CampaignPace:
    """One campaign's pacing state: today's spend, the learned level, the rate filter."""

    __slots__ = (
        "day",
        "days",
        "factor",
        "last_tau",
        "last_ts",
        "level",
        "level_sum",
        "level_weight",
        "rate",
        "spend",
    )

    def __init__(self) -> None:
        self.day = -1
        self.days = 0  # today and the days on budget right before it (gain schedule)
        self.spend = 0.0
        self.factor = 1.0
        self.level = 0.0  # integral term, ln of the factor the campaign needs on plan
        self.level_sum = 0.0  # today's level x traffic time, and the traffic time
        self.level_weight = 0.0
        self.rate = -1.0  # spend per unit of traffic time; < 0: not measured today
        self.last_ts = 0
        self.last_tau = 0.0  # traffic time of last_ts


class Pacer(Restorable):
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
        Time constant of the actual-rate filter (in traffic time).
    traffic_time
        Plan in traffic time (True) or in clock time (False: even spend per hour
        whatever the traffic; kept to measure what traffic time is worth).
    traffic_decay
        Weight of each earlier day in the site's hour-of-day traffic profile.
    settle, settle_within
        Both gains are divided by 1 + the number of days in a row, right before
        today, whose spend ended within `settle_within` (relative) of the budget
        (1, 1/2, 1/3, ...), down to `settle`. After such days the day opens at a
        level that works, so what is left to correct is mostly noise in the spend
        rate; and when nothing ranks the impressions, one flat bid all day buys the
        most for the spend, so every wobble of the factor costs impressions. A day
        that misses its budget (a market that moved, a level still being learned)
        puts the gains back to full.
    """

    def __init__(
        self,
        gain: float,
        low: float,
        high: float,
        integral: float = 0.3,
        window_ms: int = 2 * HOUR_MS,
        traffic_time: bool = True,
        traffic_decay: float = 0.7,
        settle: float = 1.0,
        settle_within: float = 0.02,
    ) -> None:
        self.gain = gain
        self.settle = settle
        self.settle_within = settle_within
        self.traffic_time = traffic_time
        self.traffic = TrafficProfile(traffic_decay)
        self.low = max(low, 1e-3)
        self.high = max(high, self.low)
        self.integral = integral
        self.window_ms = max(window_ms, 1)
        self.campaigns: dict[str, CampaignPace] = {}

    def activity(self, ts: int, n: float = 1.0) -> None:
        """Count site activity at `ts` (an item interaction) in the traffic profile;
        `spend` counts the impressions."""
        self.traffic.count(ts // DAY_MS, ts, n)

    def _elapsed(self, pace: CampaignPace, ts: int) -> float:
        """Share of the day gone by `ts`, in traffic time (or clock time)."""
        return self.traffic.elapsed(ts) if self.traffic_time else (ts % DAY_MS) / DAY_MS

    @staticmethod
    def _opening(pace: CampaignPace) -> float:
        """The level a new day opens at: the last day's mean level over its traffic."""
        if pace.level_weight > 0:
            return pace.level_sum / pace.level_weight
        return pace.level

    def _bounded(self, x: float) -> float:
        return round(min(max(math.exp(x), self.low), self.high), 6)

    def factor(self, campaign_id: str, ts: int | None = None) -> float:
        """The factor in force; at `ts` on a later day than the last update, the new
        day's opening factor (the learned level: yesterday's exhaustion is over)."""
        pace = self.campaigns.get(campaign_id)
        if pace is None:
            return 1.0
        if ts is not None and ts // DAY_MS > pace.day:
            return self._bounded(self._opening(pace))
        return pace.factor

    def spend(self, campaign: Campaign, cost: float, ts: int, request: bool = True) -> float:
        """Count an impression's cost (0 for one not won) and re-plan; the new factor.
        `request=False`: a re-plan as time passes, not a bid request (not traffic)."""
        pace = self.campaigns.get(campaign.campaign_id)
        if pace is None:
            pace = self.campaigns[campaign.campaign_id] = CampaignPace()
        day = ts // DAY_MS
        if day < pace.day:
            return pace.factor  # late spend of a past day does not count against today
        traffic = self.traffic
        if request or day > traffic.day:
            traffic.count(day, ts, 1.0 if request else 0.0)
        budget = campaign.daily_budget
        if day > pace.day:
            # Settled only after days that ended on their budget (and back to full
            # gains after one that did not: the level it opens at is not yet learned).
            landed = pace.day == day - 1 and (
                abs(pace.spend - budget) <= self.settle_within * budget
            )
            pace.days = pace.days + 1 if landed else 1
            pace.level = self._opening(pace)
            pace.level_sum = pace.level_weight = 0.0
            pace.day, pace.spend, pace.rate = day, 0.0, -1.0
            pace.last_ts, pace.last_tau = day * DAY_MS, 0.0
        if not 0.0 <= cost <= budget + pace.spend + 1.0:
            # Decoded costs are bounded (online_models/events.py); this keeps one from
            # code, or past the budget, from stretching the controller's arithmetic.
            cost = min(max(cost, 0.0), budget + 1.0) if math.isfinite(cost) else 0.0
        pace.spend += cost
        left = budget - pace.spend
        if not campaign.active or left <= 0:
            pace.factor = 0.0
            pace.last_ts = max(pace.last_ts, ts)
            return 0.0
        # Times in traffic time (share of the day's expected requests) x a day, so that
        # with uniform traffic every figure is what it would be in clock time.
        tau = self._elapsed(pace, ts) if ts >= pace.last_ts else pace.last_tau
        remaining = max((1.0 - tau) * DAY_MS, MIN_REMAINING_MS)
        required = left / remaining
        dt = max((tau - pace.last_tau) * DAY_MS, 0.0)
        if ts >= pace.last_ts:
            pace.last_ts, pace.last_tau = ts, tau
        if pace.rate < 0:
            pace.rate = required  # start of the day: assume on plan
        else:
            pace.rate = pace.rate * math.exp(-dt / self.window_ms) + cost / self.window_ms
        actual = max(pace.rate, required * math.exp(-MAX_ERROR))
        error = min(max(math.log(required / actual), -MAX_ERROR), MAX_ERROR)
        lo, hi = math.log(self.low), math.log(self.high)
        k = max(self.settle, 1.0 / max(pace.days, 1))  # 1, 1/2, 1/3, ... down to settle
        pace.level = min(max(pace.level + k * self.integral * error * dt / HOUR_MS, lo), hi)
        pace.level_sum += pace.level * dt
        pace.level_weight += dt
        pace.factor = self._bounded(pace.level + k * self.gain * error)
        return pace.factor

    def spend_ratio(self, campaign: Campaign, ts: int) -> float:
        """Spend today / the planned spend of the budget by `ts` (even in traffic time;
        1.0 is on plan)."""
        pace = self.campaigns.get(campaign.campaign_id)
        if pace is None or pace.day != ts // DAY_MS:
            return 0.0
        share = max(self._elapsed(pace, ts), MIN_REMAINING_MS / DAY_MS)
        budget = campaign.daily_budget
        return pace.spend / (budget * share) if budget > 0 else 0.0

    def state(self, campaign: Campaign, ts: int) -> dict[str, float]:
        """What an operator needs to see why a campaign bids as it does."""
        pace = self.campaigns.get(campaign.campaign_id)
        today = pace is not None and pace.day == ts // DAY_MS
        spend = pace.spend if pace is not None and today else 0.0
        share = self._elapsed(pace, ts) if pace is not None else (ts % DAY_MS) / DAY_MS
        return {
            "spend": round(spend, 6),
            "budget": campaign.daily_budget,
            "even_target": round(campaign.daily_budget * share, 6),
            "factor": self.factor(campaign.campaign_id, ts),
        }

    def to_state(self) -> dict[str, Any]:
        return {
            c: [
                p.day,
                p.spend,
                p.factor,
                p.level,
                p.rate,
                p.last_ts,
                p.last_tau,
                p.level_sum,
                p.level_weight,
                p.days,
            ]
            for c, p in self.campaigns.items()
        }

    def _restore(self, s: dict[str, Any]) -> None:
        for c, values in s.items():
            # One campaign whose pacing does not read back (a NaN saved as null by an
            # older version) starts its pacing afresh; the others keep theirs.
            try:
                pace = _read_pace(values)
            except (TypeError, ValueError):
                self.campaigns.pop(c, None)
                continue
            self.campaigns[c] = pace


def _read_pace(values: list[Any]) -> CampaignPace:
    p = CampaignPace()
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        raise ValueError("pacing state holds a value that is not a finite number")
    # Snapshots before issue 11 hold 3 fields, before traffic time 6
    # (the site's traffic profile is saved beside the campaigns).
    day, spend, factor, *rest = values
    p.day, p.spend, p.factor = int(day), float(spend), float(factor)
    if rest:
        p.level, p.rate, p.last_ts = float(rest[0]), float(rest[1]), int(rest[2])
        p.last_tau = (p.last_ts % DAY_MS) / DAY_MS
    if len(rest) > 5:
        p.last_tau = float(rest[3])
        p.level_sum, p.level_weight = float(rest[4]), float(rest[5])
    # Before `settle`: a campaign with a day on record counts as settled.
    p.days = int(rest[6]) if len(rest) > 6 else (2 if p.day >= 0 else 0)
    return p


class ValueAverage(Restorable):
    """Exponentially weighted mean of predicted impression value per campaign; until
    1 / `alpha` values are in, the plain mean of those seen (a slow average would
    otherwise stay near its first value for thousands of updates).

    >>> v = ValueAverage(alpha=0.25)
    >>> [v.update("c", x) for x in (4.0, 2.0, 0.0, 6.0, 8.0)]
    [4.0, 3.0, 2.0, 3.0, 4.25]
    """

    def __init__(self, alpha: float = 0.02) -> None:
        self.alpha = alpha
        self.means: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def update(self, campaign_id: str, value: float) -> float:
        """Fold `value` in; a non-finite one is ignored (one NaN would stay for good)."""
        if not math.isfinite(value):
            return self.means.get(campaign_id, 0.0)
        n = self.counts.get(campaign_id, 0) + 1
        self.counts[campaign_id] = n
        mean = self.means.get(campaign_id, 0.0)
        mean += max(self.alpha, 1.0 / n) * (value - mean)
        self.means[campaign_id] = mean
        return mean

    def to_state(self) -> dict[str, Any]:
        return {"means": self.means, "counts": self.counts}

    def _restore(self, s: dict[str, Any]) -> None:
        """Means and counts as saved; without counts (snapshots before they were kept:
        `counts` missing or None) every mean is taken as warmed up."""
        means: dict[str, Any] = s["means"]
        counts: dict[str, Any] | None = s.get("counts")
        # One unreadable entry (a NaN saved as null by an older version) costs that
        # campaign's average, not the others'.
        self.means = {str(k): float(v) for k, v in means.items() if _finite(v)}
        if counts is None:
            warm = int(1 / self.alpha) + 1 if self.alpha > 0 else 1
            self.counts = dict.fromkeys(self.means, warm)
        else:
            self.counts = {
                str(k): int(v) for k, v in counts.items() if str(k) in self.means and _finite(v)
            }
            for k in self.means.keys() - self.counts.keys():
                self.counts[k] = 1

    def forget(self, campaign_id: str) -> None:
        """Start the campaign's average afresh (its settings changed, or it expired)."""
        self.means.pop(campaign_id, None)
        self.counts.pop(campaign_id, None)


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
