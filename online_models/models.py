"""River estimators on plain dicts, with state that round-trips through JSON (never
pickle): a logistic regression for click and conversion probabilities
(`OnlineLogistic`, a `river.base.Classifier`) and River's linear regression on log
revenue (`OnlineRevenue`, a `river.base.Regressor`). Being River estimators, River's
metrics, pipelines and `evaluate.progressive_val_score` apply to them unchanged.

>>> m = OnlineLogistic(learning_rate=0.5, prior=0.5)
>>> for _ in range(200):
...     m.learn_one({"bias_up": 1.0}, True)
...     m.learn_one({"bias_down": 1.0}, False)
>>> m.p_one({"bias_up": 1.0}) > 0.9 > 0.1 > m.p_one({"bias_down": 1.0})
True
>>> m.predict_one({"bias_up": 1.0}), m.predict_one({"bias_down": 1.0})
(True, False)
>>> clone = OnlineLogistic.from_state(m.to_state())
>>> clone.p_one({"bias_up": 1.0}) == m.p_one({"bias_up": 1.0})
True
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from river import base, linear_model, optim

from online_models.evaluation import RunningRate

MAX_LOG_REVENUE = 15.0  # about 3.3M: a ceiling that keeps one outlier from diverging SGD
MAX_MARGIN = 30.0
LOGISTIC_FAMILY = "offset-adagrad-1"
# AdaGrad's starting sum of squared gradients. Plain AdaGrad (0) takes a full
# `learning_rate` step on a feature's first gradient however small it is: before the
# first click, hundreds of negatives (gradient ~ the base rate) would each move the
# ever-present features by a full step and a young model would underpredict ~2x.
G2_INIT = 1.0


def sigmoid(z: float) -> float:
    if z != z:  # NaN: min/max would pass it through
        z = 0.0
    z = min(max(z, -MAX_MARGIN), MAX_MARGIN)
    return 1.0 / (1.0 + math.exp(-z))


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


class OnlineLogistic(base.Classifier):
    """Logistic regression on top of the running base rate:
    p(x) = sigmoid(logit(base rate) + sum_j w_j x_j).

    The offset is the rate of positives learned so far (`RunningRate`, a weak prior in
    front), not a learned intercept: a young model predicts the observed base rate from
    its first labels instead of its prior, so it is calibrated from the start and no
    worse than the running base-rate constant until its weights have learned
    something. The weights only learn how examples differ from the base rate.

    Weights learn by AdaGrad (a step of `learning_rate` / sqrt(`G2_INIT` + sum of
    squared gradients) per feature): rare one-hot features (a campaign, a placement) keep
    large steps while ever-present ones (bias, time of day) settle, so no feature
    scaling or learning-rate schedule has to be tuned per dataset. L2 shrinks the
    weights of the features present in each example (sparse, so a step costs the
    size of the example, not of the model). `scale` multiplies the step per feature
    (`online_models.features.LEARNING_RATE_SCALE`: what evidence each kind of feature
    needs). `learn_one` takes an importance weight (delayed-feedback correction of the
    conversion model, `online_models.learner`).

    A binary `river.base.Classifier`: `predict_proba_one` gives `{False: 1 - p, True: p}`
    and `predict_one` the likelier label, as River's metrics and
    `evaluate.progressive_val_score` expect. `p_one` is the hot path: the
    probability of a positive as a bare float, without building the dict.

    Parameters
    ----------
    learning_rate
        AdaGrad's base step.
    l2
        L2 penalty on the weights of the features present in an example.
    prior
        Base rate before any label (weighted as `RunningRate`'s prior).
    horizon
        Labels over which the running base rate forgets (`RunningRate`).
    scale
        Per-feature multiple of the learning rate (missing: 1; 0: not learned).

    Examples
    --------
    >>> from river import datasets, evaluate, metrics
    >>> evaluate.progressive_val_score(
    ...     datasets.Phishing(), OnlineLogistic(learning_rate=0.1), metrics.ROCAUC()
    ... )
    ROCAUC: 8...%
    """

    def __init__(
        self,
        learning_rate: float = 0.05,
        l2: float = 1e-4,
        prior: float = 0.5,
        horizon: int = 200_000,
        scale: Mapping[str, float] | None = None,
    ) -> None:
        self.learning_rate = learning_rate
        # Per-feature multiple of the learning rate (missing: 1; 0: not learned).
        self.scale: Mapping[str, float] = scale if scale is not None else {}
        self.l2 = l2
        self.prior = prior
        self.horizon = horizon
        self.rate = RunningRate(prior, horizon=horizon)
        self.weights: dict[str, float] = {}
        self.g2: dict[str, float] = {}
        self.n_learned = 0

    @property
    def offset(self) -> float:
        return logit(self.rate.value)

    def margin(self, x: Mapping[str, float]) -> float:
        """Log-odds of x relative to the base rate (0: x is an average example)."""
        w = self.weights
        return sum(w[k] * v for k, v in x.items() if k in w)

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {}
        yield {"learning_rate": 0.5, "l2": 0.0, "prior": 0.1, "horizon": 1_000}

    def p_one(self, x: Mapping[str, float]) -> float:
        """Probability that x is a positive: the hot path (no dict built), equal to
        `predict_proba_one(x)[True]`."""
        return sigmoid(self.offset + self.margin(x))

    def predict_proba_one(  # type: ignore[override]
        self, x: Mapping[str, float], **kwargs: Any
    ) -> dict[bool, float]:
        p = self.p_one(x)
        return {False: 1.0 - p, True: p}

    def predict_one(self, x: Mapping[str, float], **kwargs: Any) -> bool:  # type: ignore[override]
        return self.p_one(x) > 0.5

    def learn_one(  # type: ignore[override]
        self, x: Mapping[str, float], y: bool, weight: float = 1.0, trial: bool = True
    ) -> None:
        """One AdaGrad step on the weighted log-loss, then count the label in the base
        rate (`trial=False`: a late positive of an example already counted). A
        non-finite feature value or weight skips the step: it would turn every weight
        it touches into NaN, for good."""
        g = (self.p_one(x) - (1.0 if y else 0.0)) * weight
        if g and not (math.isfinite(g) and all(math.isfinite(v) for v in x.values())):
            return
        if g:
            w, g2, lr, l2, scale = self.weights, self.g2, self.learning_rate, self.l2, self.scale
            for k, v in x.items():
                step = scale.get(k, 1.0) * lr
                if not v or not step:
                    continue
                wk = w.get(k, 0.0)
                gk = g * v + l2 * wk
                acc = g2.get(k, G2_INIT) + gk * gk
                g2[k] = acc
                w[k] = wk - step * gk / math.sqrt(acc)
        self.rate.observe(y, trial)
        self.n_learned += 1

    def contributions(self, x: Mapping[str, float]) -> list[tuple[str, float]]:
        """(feature, weight x value) of x's features, largest effect first."""
        w = self.weights
        out = [(k, w[k] * v) for k, v in x.items() if k in w and w[k] * v]
        out.sort(key=lambda kv: (-abs(kv[1]), kv[0]))
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            "family": LOGISTIC_FAMILY,
            "learning_rate": self.learning_rate,
            "l2": self.l2,
            "prior": self.prior,
            "rate": self.rate.to_state(),
            "n_learned": self.n_learned,
            "weights": self.weights,
            "g2": self.g2,
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], scale: Mapping[str, float] | None = None
    ) -> OnlineLogistic:
        if state.get("family") != LOGISTIC_FAMILY:
            raise ValueError(f"logistic model family {state.get('family')!r} is not readable")
        m = cls(float(state["learning_rate"]), float(state["l2"]), float(state["prior"]))
        m.scale = scale if scale is not None else {}
        m.rate = RunningRate.from_state(state["rate"])
        m.horizon = m.rate.horizon
        m.n_learned = int(state["n_learned"])
        # A weight that does not read back as a finite number (null: a NaN written by an
        # older version) is dropped: it costs that feature, not the model.
        m.weights = {str(k): float(v) for k, v in state["weights"].items() if _finite(v)}
        m.g2 = {str(k): float(v) for k, v in state["g2"].items() if _finite(v) and v > 0}
        return m


class OnlineRevenue(base.Regressor):
    """Linear regression on log revenue (order values are heavy-tailed): River's
    `linear_model.LinearRegression` learns log1p(revenue), capped at `MAX_LOG_REVENUE`;
    `predict_one` returns revenue (expm1 of the clamped prediction). A
    `river.base.Regressor`, so River's regression metrics apply unchanged.

    Parameters
    ----------
    learning_rate
        SGD step of the weights and of the intercept.
    prior
        Revenue predicted before any example (the intercept starts at log1p(prior)).

    Examples
    --------
    >>> m = OnlineRevenue(learning_rate=0.05, prior=10.0)
    >>> round(m.predict_one({"basket": 1.0}), 6)
    10.0
    >>> for _ in range(500):
    ...     m.learn_one({"basket": 1.0}, 100.0)
    >>> 90 < m.predict_one({"basket": 1.0}) < 110
    True
    """

    def __init__(self, learning_rate: float = 0.01, prior: float = 50.0) -> None:
        self.learning_rate = learning_rate
        self.prior = prior
        self.model = linear_model.LinearRegression(
            optimizer=optim.SGD(learning_rate),
            intercept_init=math.log1p(prior),
            intercept_lr=learning_rate,
        )
        self.n_learned = 0

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {}
        yield {"learning_rate": 0.05, "prior": 10.0}

    def predict_one(self, x: dict[str, float]) -> float:  # type: ignore[override]
        y = float(self.model.predict_one(x))
        if not math.isfinite(y):  # min/max would pass a NaN through
            y = math.log1p(self.prior)
        return math.expm1(min(max(y, 0.0), MAX_LOG_REVENUE))

    def learn_one(self, x: dict[str, float], y: float) -> None:  # type: ignore[override]
        """One SGD step towards log1p(`y`), the revenue (non-finite input: skipped)."""
        if not (math.isfinite(y) and all(math.isfinite(v) for v in x.values())):
            return
        self.model.learn_one(x, min(math.log1p(max(y, 0.0)), MAX_LOG_REVENUE))
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


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _fitted(model: Any) -> dict[str, Any]:
    """What a River linear model has learned: weights, intercept, optimizer step."""
    return {
        "weights": model._weights.to_dict(),
        "intercept": model.intercept,
        "iterations": model.optimizer.n_iterations,
    }


def _restore(model: Any, state: dict[str, Any]) -> None:
    for k, v in state["weights"].items():
        if _finite(v):
            model._weights[k] = float(v)
    if _finite(state["intercept"]):
        model.intercept = float(state["intercept"])
    model.optimizer.n_iterations = int(state["iterations"])
