"""Progressive validation: running log-loss, ROC AUC and calibration of a
probabilistic model, beside the same figures for the *running base-rate constant*
(the predictor that always says the rate of positives seen so far), over the whole
stream and over a recent window; state serialises to plain JSON.

AUC is computed from score histograms (`bins` buckets), exact up to ties within a
bucket, which keeps memory constant however long the stream.

>>> m = BinaryScore()
>>> for p, y in [(0.9, True), (0.8, True), (0.3, False), (0.2, False), (0.6, False)]:
...     m.update(p, y, constant=0.4)
>>> round(m.auc, 3), round(m.calibration, 3), m.n
(1.0, 1.4, 5)
>>> round(m.logloss, 3), round(m.constant_logloss, 3)   # the model beats the constant
(0.365, 0.673)
"""

from __future__ import annotations

import math
from typing import Any

EPS = 1e-15
WINDOW = 5000  # examples in the recent window (exponentially weighted)
PRIOR_WEIGHT = 2.0  # pseudo-labels of a running rate's prior


def logloss(p: float, y: bool) -> float:
    p = min(max(p, EPS), 1 - EPS)
    return -math.log(p) if y else -math.log(1 - p)


class RunningRate:
    """A rate of positives with a weak prior: (successes + prior x k) / (trials + k).

    Trials and successes may be counted at different times (a click is a trial when it
    happens, its conversion a success hours later). Counts decay by 1 - 1/`horizon` per
    trial, so the rate follows drift over about `horizon` trials (0: never decays).

    >>> r = RunningRate(prior=0.03, horizon=0)
    >>> r.value
    0.03
    >>> for y in [False] * 97 + [True] * 3:
    ...     r.observe(y)
    >>> round(r.value, 4)
    0.03
    >>> r.observe(True, trial=False); round(r.value, 4)   # a late success of a past trial
    0.0398
    """

    __slots__ = ("decay", "horizon", "k", "prior", "successes", "trials")

    def __init__(self, prior: float, k: float = PRIOR_WEIGHT, horizon: int = 200_000) -> None:
        self.prior, self.k, self.horizon = prior, k, horizon
        self.decay = 1.0 - 1.0 / horizon if horizon > 0 else 1.0
        self.trials = 0.0
        self.successes = 0.0

    @property
    def value(self) -> float:
        return (self.successes + self.prior * self.k) / (self.trials + self.k)

    def observe(self, y: bool, trial: bool = True) -> None:
        if trial:
            d = self.decay
            self.trials = self.trials * d + 1.0
            self.successes *= d
        if y:
            self.successes += 1.0

    def to_state(self) -> list[float]:
        return [self.prior, self.k, self.horizon, self.trials, self.successes]

    @classmethod
    def from_state(cls, s: list[float]) -> RunningRate:
        r = cls(float(s[0]), float(s[1]), int(s[2]))
        r.trials, r.successes = float(s[3]), float(s[4])
        return r


class BinaryScore:
    """Log-loss, ROC AUC and calibration (mean predicted / observed rate), and the
    log-loss of a constant predictor scored on the same labels, cumulative and over a
    recent window of about `window` examples (exponentially weighted).

    The constant is what the caller passes to `update` (the running base rate known
    when the example is scored); without one, the score's own running rate of the
    labels before this one (prior `prior`)."""

    def __init__(self, bins: int = 100, window: int = WINDOW, prior: float = 0.5) -> None:
        self.bins = bins
        self.window = window
        self.prior = prior
        self.n = 0
        self.loss_sum = 0.0
        self.const_sum = 0.0
        self.p_sum = 0.0
        self.y_sum = 0
        self.pos = [0] * bins
        self.neg = [0] * bins
        # Recent window: n, model loss, constant loss, predictions, positives.
        self.recent = [0.0, 0.0, 0.0, 0.0, 0.0]

    def update(self, p: float, y: bool, constant: float | None = None) -> None:
        if constant is None:
            constant = (self.y_sum + self.prior * PRIOR_WEIGHT) / (self.n + PRIOR_WEIGHT)
        p = min(max(p, EPS), 1 - EPS)
        loss = -math.log(p) if y else -math.log(1 - p)
        const = logloss(constant, y)
        self.n += 1
        self.loss_sum += loss
        self.const_sum += const
        self.p_sum += p
        d = 1.0 - 1.0 / self.window
        w = self.recent
        w[0] = w[0] * d + 1.0
        w[1] = w[1] * d + loss
        w[2] = w[2] * d + const
        w[3] = w[3] * d + p
        w[4] = w[4] * d + (1.0 if y else 0.0)
        b = min(int(p * self.bins), self.bins - 1)
        if y:
            self.y_sum += 1
            self.pos[b] += 1
        else:
            self.neg[b] += 1

    @property
    def logloss(self) -> float:
        return self.loss_sum / self.n if self.n else math.nan

    @property
    def constant_logloss(self) -> float:
        """Progressive log-loss of the running base-rate constant on the same labels."""
        return self.const_sum / self.n if self.n else math.nan

    @property
    def auc(self) -> float:
        n_pos, n_neg = self.y_sum, self.n - self.y_sum
        if not n_pos or not n_neg:
            return math.nan
        below = 0  # negatives in lower buckets
        area = 0.0
        for pos, neg in zip(self.pos, self.neg, strict=True):
            area += pos * (below + neg / 2)
            below += neg
        return area / (n_pos * n_neg)

    @property
    def calibration(self) -> float:
        return self.p_sum / self.y_sum if self.y_sum else math.nan

    def recent_summary(self) -> dict[str, float | None]:
        """The recent window: its weight, log-losses, calibration and positives."""
        n, loss, const, p, y = self.recent
        return {
            "n": n,
            "logloss": loss / n if n else None,
            "constant_logloss": const / n if n else None,
            "calibration": p / y if y else None,
            "positives": y,
        }

    def health(self, min_positives: float, low: float, high: float) -> str | None:
        """Why the model should not be trusted now, or None: over the recent window it
        must have seen `min_positives`, beat the constant's log-loss and be calibrated
        within [low, high].

        >>> s = BinaryScore(window=100)
        >>> s.health(1, 0.8, 1.25)
        'too_few_positives'
        >>> for k in range(100):
        ...     s.update(0.5, k % 2 == 0, constant=0.5)
        >>> s.health(1, 0.8, 1.25)     # no better than the constant
        'not_better_than_constant'
        """
        _, loss, const, p, y = self.recent
        if y < min_positives:
            return "too_few_positives"
        if not loss < const:
            return "not_better_than_constant"
        if not low <= p / y <= high:
            return "miscalibrated"
        return None

    def curve(self, points: int = 10) -> list[dict[str, float]]:
        """Calibration curve: mean predicted vs observed rate per probability decile."""
        step = self.bins // points
        out = []
        for i in range(points):
            pos = sum(self.pos[i * step : (i + 1) * step])
            neg = sum(self.neg[i * step : (i + 1) * step])
            if pos + neg:
                out.append(
                    {
                        "bin": (i + 0.5) / points,
                        "observed": pos / (pos + neg),
                        "n": float(pos + neg),
                    }
                )
        return out

    def summary(self) -> dict[str, Any]:
        """Metrics as JSON-safe numbers (None where undefined so far)."""
        return {
            "n": self.n,
            "logloss": _num(self.logloss),
            "constant_logloss": _num(self.constant_logloss),
            "auc": _num(self.auc),
            "calibration": _num(self.calibration),
            "positives": self.y_sum,
            "recent": self.recent_summary(),
        }

    @classmethod
    def merged(cls, scores: list[BinaryScore]) -> BinaryScore:
        """Pool several partitions' scores into one (same bins)."""
        first = scores[0] if scores else cls()
        out = cls(first.bins, first.window, first.prior)
        for s in scores:
            out.n += s.n
            out.loss_sum += s.loss_sum
            out.const_sum += s.const_sum
            out.p_sum += s.p_sum
            out.y_sum += s.y_sum
            out.pos = [a + b for a, b in zip(out.pos, s.pos, strict=True)]
            out.neg = [a + b for a, b in zip(out.neg, s.neg, strict=True)]
            out.recent = [a + b for a, b in zip(out.recent, s.recent, strict=True)]
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            "bins": self.bins,
            "window": self.window,
            "prior": self.prior,
            "n": self.n,
            "loss_sum": self.loss_sum,
            "const_sum": self.const_sum,
            "p_sum": self.p_sum,
            "y_sum": self.y_sum,
            "pos": self.pos,
            "neg": self.neg,
            "recent": self.recent,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BinaryScore:
        m = cls(int(state["bins"]), int(state["window"]), float(state["prior"]))
        m.n, m.loss_sum, m.p_sum = int(state["n"]), float(state["loss_sum"]), float(state["p_sum"])
        m.const_sum = float(state["const_sum"])
        m.y_sum, m.pos, m.neg = int(state["y_sum"]), list(state["pos"]), list(state["neg"])
        m.recent = [float(v) for v in state["recent"]]
        return m


class RegressionScore:
    """Running mean absolute error and mean target of a regressor."""

    def __init__(self) -> None:
        self.n = 0
        self.abs_sum = 0.0
        self.y_sum = 0.0

    def update(self, y_pred: float, y: float) -> None:
        self.n += 1
        self.abs_sum += abs(y_pred - y)
        self.y_sum += y

    @property
    def mae(self) -> float:
        return self.abs_sum / self.n if self.n else math.nan

    def summary(self) -> dict[str, float | None]:
        return {
            "n": self.n,
            "mae": _num(self.mae),
            "mean_target": self.y_sum / self.n if self.n else None,
        }

    def to_state(self) -> dict[str, Any]:
        return {"n": self.n, "abs_sum": self.abs_sum, "y_sum": self.y_sum}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RegressionScore:
        m = cls()
        m.n, m.abs_sum, m.y_sum = int(state["n"]), float(state["abs_sum"]), float(state["y_sum"])
        return m


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x
