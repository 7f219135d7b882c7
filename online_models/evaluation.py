"""Progressive validation: running log-loss, ROC AUC and calibration of a
probabilistic model, with state that serialises to plain JSON.

AUC is computed from score histograms (`bins` buckets), exact up to ties within a
bucket, which keeps memory constant however long the stream.

>>> m = BinaryScore()
>>> for p, y in [(0.9, True), (0.8, True), (0.3, False), (0.2, False), (0.6, False)]:
...     m.update(p, y)
>>> round(m.auc, 3), round(m.calibration, 3), m.n
(1.0, 1.4, 5)
"""

from __future__ import annotations

import math
from typing import Any

EPS = 1e-15


class BinaryScore:
    """Log-loss, ROC AUC and calibration (mean predicted / observed rate)."""

    def __init__(self, bins: int = 100) -> None:
        self.bins = bins
        self.n = 0
        self.loss_sum = 0.0
        self.p_sum = 0.0
        self.y_sum = 0
        self.pos = [0] * bins
        self.neg = [0] * bins

    def update(self, p: float, y: bool) -> None:
        p = min(max(p, EPS), 1 - EPS)
        self.n += 1
        self.loss_sum -= math.log(p) if y else math.log(1 - p)
        self.p_sum += p
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

    def summary(self) -> dict[str, float | None]:
        """Metrics as JSON-safe numbers (None where undefined so far)."""
        return {
            "n": self.n,
            "logloss": _num(self.logloss),
            "auc": _num(self.auc),
            "calibration": _num(self.calibration),
            "positives": self.y_sum,
        }

    @classmethod
    def merged(cls, scores: list[BinaryScore]) -> BinaryScore:
        """Pool several partitions' scores into one (same bins)."""
        out = cls(scores[0].bins if scores else 100)
        for s in scores:
            out.n += s.n
            out.loss_sum += s.loss_sum
            out.p_sum += s.p_sum
            out.y_sum += s.y_sum
            out.pos = [a + b for a, b in zip(out.pos, s.pos, strict=True)]
            out.neg = [a + b for a, b in zip(out.neg, s.neg, strict=True)]
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            "bins": self.bins,
            "n": self.n,
            "loss_sum": self.loss_sum,
            "p_sum": self.p_sum,
            "y_sum": self.y_sum,
            "pos": self.pos,
            "neg": self.neg,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BinaryScore:
        m = cls(int(state["bins"]))
        m.n, m.loss_sum, m.p_sum = int(state["n"]), float(state["loss_sum"]), float(state["p_sum"])
        m.y_sum, m.pos, m.neg = int(state["y_sum"]), list(state["pos"]), list(state["neg"])
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
