"""Online models on River, speaking `predict_one`/`learn_one` on plain dicts, with
state that round-trips through JSON (never pickle).

>>> m = OnlineLogistic(learning_rate=0.5, intercept_lr=0.5)
>>> for _ in range(200):
...     m.learn_one({"bias_up": 1.0}, True)
...     m.learn_one({"bias_down": 1.0}, False)
>>> m.predict_one({"bias_up": 1.0}) > 0.9 > 0.1 > m.predict_one({"bias_down": 1.0})
True
>>> clone = OnlineLogistic.from_state(m.to_state())
>>> clone.predict_one({"bias_up": 1.0}) == m.predict_one({"bias_up": 1.0})
True
"""

from __future__ import annotations

import math
from typing import Any

from river import linear_model, optim

MAX_LOG_REVENUE = 15.0  # about 3.3M: a ceiling that keeps one outlier from diverging SGD


class OnlineLogistic:
    """Logistic regression for click and conversion probabilities.

    The intercept starts at the logit of a prior rate and learns faster than the
    weights: rare positives otherwise make a young model badly calibrated.
    """

    def __init__(
        self,
        learning_rate: float = 0.005,
        l2: float = 1e-5,
        prior: float = 0.5,
        intercept_lr: float = 0.02,
    ) -> None:
        self.learning_rate = learning_rate
        self.l2 = l2
        self.prior = prior
        self.intercept_lr = intercept_lr
        self.model = linear_model.LogisticRegression(
            optimizer=optim.SGD(learning_rate),
            l2=l2,
            intercept_lr=intercept_lr,
            intercept_init=math.log(prior / (1 - prior)),
        )
        self.n_learned = 0

    def predict_one(self, x: dict[str, float]) -> float:
        return float(self.model.predict_proba_one(x)[True])

    def learn_one(self, x: dict[str, float], y: bool) -> None:
        self.model.learn_one(x, y)
        self.n_learned += 1

    def to_state(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "l2": self.l2,
            "prior": self.prior,
            "intercept_lr": self.intercept_lr,
            "n_learned": self.n_learned,
            **_fitted(self.model),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> OnlineLogistic:
        m = cls(
            float(state["learning_rate"]),
            float(state["l2"]),
            float(state["prior"]),
            float(state["intercept_lr"]),
        )
        _restore(m.model, state)
        m.n_learned = int(state["n_learned"])
        return m


class OnlineRevenue:
    """Linear regression on log revenue: order values are heavy-tailed."""

    def __init__(self, learning_rate: float = 0.01, prior: float = 50.0) -> None:
        self.learning_rate = learning_rate
        self.prior = prior
        self.model = linear_model.LinearRegression(
            optimizer=optim.SGD(learning_rate),
            intercept_init=math.log1p(prior),
            intercept_lr=learning_rate,
        )
        self.n_learned = 0

    def predict_one(self, x: dict[str, float]) -> float:
        y = min(max(float(self.model.predict_one(x)), 0.0), MAX_LOG_REVENUE)
        return math.expm1(y)

    def learn_one(self, x: dict[str, float], revenue: float) -> None:
        self.model.learn_one(x, min(math.log1p(max(revenue, 0.0)), MAX_LOG_REVENUE))
        self.n_learned += 1

    def to_state(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "prior": self.prior,
            "n_learned": self.n_learned,
            **_fitted(self.model),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> OnlineRevenue:
        m = cls(float(state["learning_rate"]), float(state["prior"]))
        _restore(m.model, state)
        m.n_learned = int(state["n_learned"])
        return m


def _fitted(model: Any) -> dict[str, Any]:
    """What a River linear model has learned: weights, intercept, optimizer step."""
    return {
        "weights": model._weights.to_dict(),
        "intercept": model.intercept,
        "iterations": model.optimizer.n_iterations,
    }


def _restore(model: Any, state: dict[str, Any]) -> None:
    for k, v in state["weights"].items():
        model._weights[k] = float(v)
    model.intercept = float(state["intercept"])
    model.optimizer.n_iterations = int(state["iterations"])
