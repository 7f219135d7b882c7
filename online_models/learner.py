"""The three models of a partition and their progressive validation.

Each label is first scored by the current model, then learned (predict, then learn),
so the running metrics estimate performance on unseen data.

>>> from online_models.attribution import Label, Pending
>>> models = Models(learning_rate=0.05, l2=0.0)
>>> pending = Pending("i1", "u", "c1", 0, {"bias": 1.0}, 0.1)
>>> models.learn([Label("click", True, pending, 10), Label("click", False, pending, 20)])
>>> models.click_score.n, models.click.n_learned
(2, 2)
"""

from __future__ import annotations

from typing import Any

from online_models.attribution import Label
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

    def learn(self, labels: list[Label]) -> None:
        for label in labels:
            if label.kind == "click":
                self.click_score.update(self.click.predict_one(label.x), label.y)
                self.click.learn_one(label.x, label.y)
            else:
                self.conversion_score.update(self.conversion.predict_one(label.x), label.y)
                self.conversion.learn_one(label.x, label.y)
                if label.y:
                    self.revenue_score.update(self.revenue.predict_one(label.x), label.revenue)
                    self.revenue.learn_one(label.x, label.revenue)

    def predict(self, x: dict[str, float]) -> tuple[float, float, float]:
        """(p_click, p_conversion given click, expected revenue given conversion)."""
        return (
            self.click.predict_one(x),
            self.conversion.predict_one(x),
            self.revenue.predict_one(x),
        )

    def version(self, partition: int) -> str:
        """Changes every 1,000 learned click labels: which model made an output."""
        return f"{MODEL_FAMILY}.p{partition}.k{self.click.n_learned // 1000}"

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
