"""Online uplift learners, River style, and the Qini metric they are chosen by.

Uplift is the change in purchase probability an offer causes,
u(x) = p(buy | x, offer) - p(buy | x, no offer). Two approaches are learned side by
side from the randomised exposures (treated or held out as control):

* `TwoModelUplift`: one logistic model on the treated, one on the controls; u is the
  difference of their predictions.
* `ClassTransformationUplift` (Jaskowski & Jaroszewicz 2012): one logistic model of
  Z = [treated and bought] or [control and did not buy]. With both groups weighted to
  equal mass (weight 1 / (2 p(group))), p(Z | x) = (1 + u(x)) / 2.

`UpliftSelector` scores both before each label (predict, then learn) and picks the one
with the larger Qini coefficient on a recent window of the randomised data.

>>> import random
>>> rng = random.Random(0)
>>> sel = UpliftSelector(every=200)
>>> for _ in range(4000):
...     good = rng.random() < 0.5
...     x = {"bias": 1.0, "good": float(good)}
...     t = rng.random() < 0.5
...     y = rng.random() < (0.1 + (0.3 if good and t else 0.0))
...     sel.learn_one(x, t, y)
>>> sel.predict_one({"bias": 1.0, "good": 1.0}) > 0.15 > sel.predict_one({"bias": 1.0, "good": 0.0})
True
>>> sel.chosen in ("two_model", "class_transformation")
True
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from online_models.models import OnlineLogistic

LEARNING_RATE = 0.05
L2 = 1e-4


class TwoModelUplift:
    """u(x) = p_treated(x) - p_control(x), each a logistic model of its own group.

    Parameters
    ----------
    learning_rate
        AdaGrad's base step of both models.
    l2
        L2 penalty of both models.
    prior
        Purchase rate before any label.

    Examples
    --------
    >>> m = TwoModelUplift(learning_rate=0.2)
    >>> for _ in range(300):
    ...     m.learn_one({"bias": 1.0}, True, True)
    ...     m.learn_one({"bias": 1.0}, False, False)
    >>> m.predict_one({"bias": 1.0}) > 0.9
    True
    """

    name = "two_model"

    def __init__(
        self, learning_rate: float = LEARNING_RATE, l2: float = L2, prior: float = 0.1
    ) -> None:
        self.treated = OnlineLogistic(learning_rate, l2, prior)
        self.control = OnlineLogistic(learning_rate, l2, prior)

    def learn_one(
        self, x: Mapping[str, float], treated: bool, y: bool, p_treated: float = 0.5
    ) -> None:
        (self.treated if treated else self.control).learn_one(x, y)

    def predict_both(self, x: Mapping[str, float]) -> tuple[float, float]:
        """(p(buy | offer), p(buy | no offer))."""
        return self.treated.p_one(x), self.control.p_one(x)

    def predict_one(self, x: Mapping[str, float]) -> float:
        p1, p0 = self.predict_both(x)
        return p1 - p0

    def to_state(self) -> dict[str, Any]:
        return {"treated": self.treated.to_state(), "control": self.control.to_state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TwoModelUplift:
        m = cls()
        m.treated = OnlineLogistic.from_state(state["treated"])
        m.control = OnlineLogistic.from_state(state["control"])
        return m


class ClassTransformationUplift:
    """u(x) = 2 p(Z | x) - 1, Z = treated and bought, or control and not bought.

    Each example is weighted 1 / (2 p(its group)), so an unbalanced split (a 10 %
    control share) counts as a balanced one, which the identity needs.

    Parameters
    ----------
    learning_rate
        AdaGrad's base step.
    l2
        L2 penalty on the weights.

    Examples
    --------
    >>> m = ClassTransformationUplift(learning_rate=0.2)
    >>> for _ in range(300):
    ...     m.learn_one({"bias": 1.0}, True, True, p_treated=0.9)
    ...     m.learn_one({"bias": 1.0}, False, False, p_treated=0.9)
    >>> m.predict_one({"bias": 1.0}) > 0.8
    True
    """

    name = "class_transformation"

    def __init__(self, learning_rate: float = LEARNING_RATE, l2: float = L2) -> None:
        self.model = OnlineLogistic(learning_rate, l2, 0.5)

    def learn_one(
        self, x: Mapping[str, float], treated: bool, y: bool, p_treated: float = 0.5
    ) -> None:
        p_group = p_treated if treated else 1.0 - p_treated
        self.model.learn_one(x, treated == y, weight=1.0 / (2.0 * max(p_group, 1e-3)))

    def predict_one(self, x: Mapping[str, float]) -> float:
        return 2.0 * self.model.p_one(x) - 1.0

    def to_state(self) -> dict[str, Any]:
        return {"model": self.model.to_state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ClassTransformationUplift:
        m = cls()
        m.model = OnlineLogistic.from_state(state["model"])
        return m


def qini_curve(
    scores: Sequence[float], treated: Sequence[bool], y: Sequence[bool]
) -> list[tuple[int, float]]:
    """Qini curve: (k, incremental purchases among the k highest scores), with the
    controls' purchases scaled to the treated count, Q(k) = Y_T(k) - Y_C(k) N_T(k)/N_C(k)
    (Radcliffe 2007). Ties in score enter together.

    >>> qini_curve([0.9, 0.8, 0.1, 0.0], [True, False, True, False], [True, False, False, True])
    [(0, 0.0), (1, 1.0), (2, 1.0), (3, 1.0), (4, 0.0)]
    """
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    out = [(0, 0.0)]
    nt = nc = yt = yc = 0
    for rank, i in enumerate(order, 1):
        if treated[i]:
            nt += 1
            yt += int(y[i])
        else:
            nc += 1
            yc += int(y[i])
        if rank < len(order) and scores[order[rank]] == scores[i]:
            continue
        out.append((rank, yt - (yc * nt / nc if nc else 0.0)))
    return out


def qini_coefficient(scores: Sequence[float], treated: Sequence[bool], y: Sequence[bool]) -> float:
    """Area between the Qini curve and the random-targeting line from (0, 0) to
    (N, Q(N)), per person (trapezoids; 0 for random scores).

    >>> t, y = [True, False, True, False], [True, False, False, True]
    >>> qini_coefficient([0.9, 0.8, 0.1, 0.0], t, y)
    0.75
    """
    curve = qini_curve(scores, treated, y)
    n, q_n = curve[-1]
    if n == 0:
        return 0.0
    area = 0.0
    for (k0, q0), (k1, q1) in pairwise(curve):
        area += (k1 - k0) * (q0 + q1) / 2.0
    return (area - n * q_n / 2.0) / n


class UpliftSelector:
    """Both learners, chosen by progressive Qini on a window of randomised exposures.

    Parameters
    ----------
    window
        Recent labelled exposures the Qini coefficients are computed on.
    every
        Labels between two re-choices (sorting the window costs n log n).
    learning_rate
        Both learners' AdaGrad step.
    """

    def __init__(
        self, window: int = 5000, every: int = 500, learning_rate: float = LEARNING_RATE
    ) -> None:
        self.two_model = TwoModelUplift(learning_rate)
        self.class_transformation = ClassTransformationUplift(learning_rate)
        self.window = window
        self.every = every
        self.recent: deque[tuple[float, float, bool, bool]] = deque(maxlen=window)
        self.chosen = TwoModelUplift.name
        self.qini: dict[str, float] = {}
        self.n = 0

    def learn_one(
        self, x: Mapping[str, float], treated: bool, y: bool, p_treated: float = 0.5
    ) -> None:
        # Predict, then learn: the window scores predictions made before each label.
        self.recent.append(
            (self.two_model.predict_one(x), self.class_transformation.predict_one(x), treated, y)
        )
        self.two_model.learn_one(x, treated, y, p_treated)
        self.class_transformation.learn_one(x, treated, y, p_treated)
        self.n += 1
        if self.n % self.every == 0:
            self._choose()

    def _choose(self) -> None:
        t = [r[2] for r in self.recent]
        y = [r[3] for r in self.recent]
        if all(t) or not any(t):
            return
        self.qini = {
            TwoModelUplift.name: qini_coefficient([r[0] for r in self.recent], t, y),
            ClassTransformationUplift.name: qini_coefficient([r[1] for r in self.recent], t, y),
        }
        self.chosen = max(self.qini, key=lambda k: (self.qini[k], k == TwoModelUplift.name))

    def predict_both(self, x: Mapping[str, float]) -> tuple[float, float]:
        return self.two_model.predict_both(x)

    def predict_one(self, x: Mapping[str, float]) -> float:
        if self.chosen == ClassTransformationUplift.name:
            return self.class_transformation.predict_one(x)
        return self.two_model.predict_one(x)

    def to_state(self) -> dict[str, Any]:
        return {
            "two_model": self.two_model.to_state(),
            "class_transformation": self.class_transformation.to_state(),
            "window": self.window,
            "every": self.every,
            "recent": [list(r) for r in self.recent],
            "chosen": self.chosen,
            "qini": self.qini,
            "n": self.n,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> UpliftSelector:
        s = cls(int(state["window"]), int(state["every"]))
        s.two_model = TwoModelUplift.from_state(state["two_model"])
        s.class_transformation = ClassTransformationUplift.from_state(state["class_transformation"])
        s.recent.extend((float(a), float(b), bool(t), bool(y)) for a, b, t, y in state["recent"])
        s.chosen = str(state["chosen"])
        s.qini = {k: float(v) for k, v in state["qini"].items()}
        s.n = int(state["n"])
        return s
