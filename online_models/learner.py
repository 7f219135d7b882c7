"""The three models (click, conversion, revenue), their progressive validation and the
health gate that keeps an untrustworthy model out of bids; part of the shared
knowledge, learned from the labels of every partition.

Each label is first scored by the current model, then learned (predict, then learn),
so the running metrics estimate performance on unseen data. Each score also carries
the running base-rate constant's log-loss on the same labels, over the whole stream
and a recent window: a model that does not beat it there, or whose recent
calibration is outside [`gate_low`, `gate_high`], is *gated* (`gated()`), and bids
then do not use its predictions.

**Delayed conversions.** A click's conversion can come up to 24 h later, so negatives
are known a day after positives. With `fake_negatives` (the default) every click is
learned at once as a negative and its conversion, when it comes, as a positive, with
importance weights that undo the bias this causes (Ktena et al. 2019, "fake negative
weighting": 1 + p for positives, (1 - p)(1 + p) for negatives, p the model's current
estimate); the base rate counts clicks as they happen and conversions as they come.
Without it the model waits out the window: positives at the order, negatives 24 h
after the click, which overstates the rate while clicks are young. Either way the
conversion score judges the prediction made *at click time* against the final label.

>>> models = Models(learning_rate=0.05, l2=0.0)
>>> models.learn_one("click", {"bias": 1.0}, True)
>>> models.learn_one("click", {"bias": 1.0}, False)
>>> models.click_score.n, models.click.n_learned
(2, 2)
>>> models.gated()     # two labels prove nothing: both models stay out of bids
{'click': 'too_few_positives', 'conversion': 'too_few_positives'}
"""

from __future__ import annotations

from typing import Any

from online_models.evaluation import WINDOW, BinaryScore, RegressionScore, RunningRate
from online_models.features import LEARNING_RATE_SCALE
from online_models.models import OnlineLogistic, OnlineRevenue
from online_models.snapshot import Restorable

MODEL_FAMILY = "lr2"
GATED_MODELS = ("click", "conversion")


class Models(Restorable):
    def __init__(
        self,
        learning_rate: float,
        l2: float,
        click_prior: float = 0.03,
        conversion_prior: float = 0.1,
        *,
        horizon: int = 200_000,
        fake_negatives: bool = True,
        gate: bool = True,
        gate_window: int = WINDOW,
        gate_min_positives: float = 30.0,
        gate_low: float = 0.8,
        gate_high: float = 1.25,
    ) -> None:
        self.click = OnlineLogistic(learning_rate, l2, click_prior, horizon, LEARNING_RATE_SCALE)
        self.conversion = OnlineLogistic(
            learning_rate, l2, conversion_prior, horizon, LEARNING_RATE_SCALE
        )
        self.revenue = OnlineRevenue()
        self.fake_negatives = fake_negatives
        # Conversions per click, counting each when it happens: the conversion
        # constant (and, with fake negatives, the conversion model's own offset).
        self.conversion_rate = RunningRate(conversion_prior, horizon=horizon)
        self.click_score = BinaryScore(window=gate_window, prior=click_prior)
        self.conversion_score = BinaryScore(window=gate_window, prior=conversion_prior)
        self.revenue_score = RegressionScore()
        self.gate = (gate_min_positives, gate_low, gate_high) if gate else None

    def learn_one(
        self,
        kind: str,
        x: dict[str, float],
        y: bool,
        revenue: float = 0.0,
        p: float = -1.0,
        base: float = -1.0,
    ) -> None:
        """Score the example with the current model, then learn it.

        `kind` is "click" (a click label), "clicked" (a click opened a conversion
        window), "converted" (an order was credited to a click, with its revenue) or
        "conversion" (the click's final label when its window closed; `p` is the
        conversion prediction made when the click happened and `base` the running
        base rate then, the constant it is compared with; negative if unknown)."""
        if kind == "click":
            model = self.click
            self.click_score.update(model.p_one(x), y, model.rate.value)
            model.learn_one(x, y)
            return
        conv = self.conversion
        if kind == "clicked":
            self.conversion_rate.observe(False)
            if self.fake_negatives:  # a fake negative now; its weight undoes the bias
                q = conv.p_one(x)
                conv.learn_one(x, False, weight=(1 - q) * (1 + q))
        elif kind == "converted":
            self.conversion_rate.observe(True, trial=False)
            if self.fake_negatives:
                conv.learn_one(x, True, weight=1 + conv.p_one(x), trial=False)
            else:
                conv.learn_one(x, True)
            self.revenue_score.update(self.revenue.predict_one(x), revenue)
            self.revenue.learn_one(x, revenue)
        else:  # the final label: judged here, learned already unless a waited negative
            q = p if p >= 0 else conv.p_one(x)
            c = base if base >= 0 else self.conversion_rate.value
            self.conversion_score.update(q, y, c)
            if not y and not self.fake_negatives:
                conv.learn_one(x, False)

    def predict(self, x: dict[str, float]) -> tuple[float, float, float]:
        """(p_click, p_conversion given click, expected revenue given conversion)."""
        return (
            self.click.p_one(x),
            self.conversion.p_one(x),
            self.revenue.predict_one(x),
        )

    def base_rates(self) -> tuple[float, float]:
        """The running base-rate constants (click, conversion): a gated model's
        neutral prediction."""
        return self.click.rate.value, self.conversion_rate.value

    def gated(self) -> dict[str, str]:
        """Models kept out of bids now, with why (see `BinaryScore.health`)."""
        out: dict[str, str] = {}
        if self.gate is None:
            return out
        for name, score in (("click", self.click_score), ("conversion", self.conversion_score)):
            why = score.health(*self.gate)
            if why is not None:
                out[name] = why
        return out

    def version(self) -> str:
        """Changes every 1,000 learned click labels: which model made an output."""
        return f"{MODEL_FAMILY}.k{self.click.n_learned // 1000}"

    def summary(self) -> dict[str, Any]:
        gated = self.gated()
        return {
            "click": {**self.click_score.summary(), "gated": gated.get("click")},
            "conversion": {**self.conversion_score.summary(), "gated": gated.get("conversion")},
            "revenue": self.revenue_score.summary(),
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "family": MODEL_FAMILY,
            "click": self.click.to_state(),
            "conversion": self.conversion.to_state(),
            "conversion_rate": self.conversion_rate.to_state(),
            "revenue": self.revenue.to_state(),
            "click_score": self.click_score.to_state(),
            "conversion_score": self.conversion_score.to_state(),
            "revenue_score": self.revenue_score.to_state(),
        }

    def _restore(self, s: dict[str, Any]) -> None:
        if s.get("family") != MODEL_FAMILY:
            raise ValueError(f"models of family {s.get('family')!r} cannot be restored")
        self.click = OnlineLogistic.from_state(s["click"], LEARNING_RATE_SCALE)
        self.conversion = OnlineLogistic.from_state(s["conversion"], LEARNING_RATE_SCALE)
        self.conversion_rate = RunningRate.from_state(s["conversion_rate"])
        self.revenue = OnlineRevenue.from_state(s["revenue"])
        self.click_score = BinaryScore.from_state(s["click_score"])
        self.conversion_score = BinaryScore.from_state(s["conversion_score"])
        self.revenue_score = RegressionScore.from_state(s["revenue_score"])
