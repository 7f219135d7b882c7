"""The three models (click, conversion, revenue) and their progressive validation;
part of the shared knowledge, learned from the labels of every partition.

Each label is first scored by the current model, then learned (predict, then learn),
so the running metrics estimate performance on unseen data.

>>> models = Models(learning_rate=0.05, l2=0.0)
>>> models.learn_one("click", {"bias": 1.0}, True)
>>> models.learn_one("click", {"bias": 1.0}, False)
>>> models.click_score.n, models.click.n_learned
(2, 2)
"""

from __future__ import annotations

from typing import Any

from online_models.evaluation import BinaryScore, RegressionScore
from online_models.models import OnlineLogistic, OnlineRevenue

MODEL_FAMILY = "lr1"


class Models:
    def __init__(
        self,
        learning_rate: float,
        l2: float,
        click_prior: float = 0.03,
        conversion_prior: float = 0.1,
        intercept_lr: float = 0.02,
    ) -> None:
        self.click = OnlineLogistic(learning_rate, l2, click_prior, intercept_lr)
        self.conversion = OnlineLogistic(learning_rate, l2, conversion_prior, intercept_lr)
        self.revenue = OnlineRevenue()
        self.click_score = BinaryScore()
        self.conversion_score = BinaryScore()
        self.revenue_score = RegressionScore()

    def learn_one(self, kind: str, x: dict[str, float], y: bool, revenue: float = 0.0) -> None:
        """Score the example with the current model, then learn it."""
        if kind == "click":
            self.click_score.update(self.click.predict_one(x), y)
            self.click.learn_one(x, y)
        else:
            self.conversion_score.update(self.conversion.predict_one(x), y)
            self.conversion.learn_one(x, y)
            if y:
                self.revenue_score.update(self.revenue.predict_one(x), revenue)
                self.revenue.learn_one(x, revenue)

    def predict(self, x: dict[str, float]) -> tuple[float, float, float]:
        """(p_click, p_conversion given click, expected revenue given conversion)."""
        return (
            self.click.predict_one(x),
            self.conversion.predict_one(x),
            self.revenue.predict_one(x),
        )

    def version(self) -> str:
        """Changes every 1,000 learned click labels: which model made an output."""
        return f"{MODEL_FAMILY}.k{self.click.n_learned // 1000}"

    def summary(self) -> dict[str, dict[str, float | None]]:
        return {
            "click": self.click_score.summary(),
            "conversion": self.conversion_score.summary(),
            "revenue": self.revenue_score.summary(),
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "click": self.click.to_state(),
            "conversion": self.conversion.to_state(),
            "revenue": self.revenue.to_state(),
            "click_score": self.click_score.to_state(),
            "conversion_score": self.conversion_score.to_state(),
            "revenue_score": self.revenue_score.to_state(),
        }

    def load_state(self, s: dict[str, Any]) -> None:
        self.click = OnlineLogistic.from_state(s["click"])
        self.conversion = OnlineLogistic.from_state(s["conversion"])
        self.revenue = OnlineRevenue.from_state(s["revenue"])
        self.click_score = BinaryScore.from_state(s["click_score"])
        self.conversion_score = BinaryScore.from_state(s["conversion_score"])
        self.revenue_score = RegressionScore.from_state(s["revenue_score"])
