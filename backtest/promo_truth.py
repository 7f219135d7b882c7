"""Known-truth promotions market (issue 22, clause 3) and the uplift report on it.

Each user belongs to one of four groups whose purchase probability with and without
an offer is stated here (`GROUPS`): persuadables (buy because of the offer), sure
things (buy anyway), lost causes (do not buy either way) and sleeping dogs (an offer
puts them off). The group is latent; the learner sees noisy features whose means
depend on it (`MEANS`, unit-free, noise `NOISE`). Every exposure is randomised
(treated with probability `P_TREATED`) and records its true uplift.

`evaluate` trains the service's uplift learner (`Decider.learn`, outcomes in event
order) and a response model (p(purchase), ignoring treatment: targeting the likeliest
buyers) on one seed, and scores both and the oracle (the true uplift) on the exposures
of another seed: Qini coefficients on the held-out randomised outcomes, and the true
incremental purchases when a fixed share of the users gets the offer.

>>> ex = list(exposures(seed=1, n=4))
>>> sorted(ex[0])
['bought', 'group', 'segment', 'treated', 'true_uplift', 'x']
>>> {g: round(p1 - p0, 2) for g, (_, p0, p1) in GROUPS.items()}
{'persuadable': 0.25, 'sure_thing': 0.05, 'lost_cause': 0.01, 'sleeping_dog': -0.2}
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

from online_models.models import OnlineLogistic
from online_models.promotions.decider import Decider
from online_models.promotions.uplift import qini_coefficient, qini_curve

# group: (share of users, p(buy | no offer), p(buy | offer))
GROUPS: dict[str, tuple[float, float, float]] = {
    "persuadable": (0.30, 0.05, 0.30),
    "sure_thing": (0.30, 0.45, 0.50),
    "lost_cause": (0.30, 0.02, 0.03),
    "sleeping_dog": (0.10, 0.40, 0.20),
}
FEATURES = ("frequency", "discount_affinity", "annoyance")
MEANS: dict[str, tuple[float, float, float]] = {
    "persuadable": (0.0, 1.0, 0.0),
    "sure_thing": (1.0, 0.0, 0.0),
    "lost_cause": (-1.0, 0.0, 0.0),
    "sleeping_dog": (1.0, 0.0, 1.0),
}
NOISE = 0.5
P_TREATED = 0.5
SEGMENTS = ("north", "south", "east", "west", "tiny")
BUDGET_SHARE = 0.3
# Chosen on the tuning seeds 101..106 (40 000 -> mean captured .806, 80 000 -> .816,
# 160 000 -> .815); the held-out seeds were scored once, after the choice.
N_TRAIN = 80_000
TUNING_SEEDS = ((101, 102), (103, 104), (105, 106))
HELD_OUT_SEEDS = ((1, 2), (5, 6), (7, 8), (9, 10))


def exposures(seed: int, n: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    names = list(GROUPS)
    weights = [GROUPS[g][0] for g in names]
    for _ in range(n):
        g = rng.choices(names, weights)[0]
        x = {"bias": 1.0}
        for f, m in zip(FEATURES, MEANS[g], strict=True):
            x[f] = m + rng.gauss(0.0, NOISE)
        # Two noise features: the learner must not need to be told what is signal.
        x["noise_a"] = rng.gauss(0.0, 1.0)
        x["noise_b"] = rng.gauss(0.0, 1.0)
        treated = rng.random() < P_TREATED
        _, p0, p1 = GROUPS[g]
        yield {
            "x": x,
            "group": g,
            "segment": "tiny" if rng.random() < 0.001 else rng.choice(SEGMENTS[:4]),
            "treated": treated,
            "bought": rng.random() < (p1 if treated else p0),
            "true_uplift": p1 - p0,
        }


def posterior_uplift(x: dict[str, float]) -> float:
    """E[true uplift | features] under the stated model: the best ranking any learner
    of these features can reach (the oracle sees the latent group, a learner cannot).

    >>> round(posterior_uplift({"frequency": 0.0, "discount_affinity": 1.0, "annoyance": 0.0}), 2)
    0.24
    >>> posterior_uplift({"frequency": 1.0, "discount_affinity": 0.0, "annoyance": 1.0}) < 0
    True
    """
    logs = {
        g: math.log(share)
        - sum((x[f] - m) ** 2 for f, m in zip(FEATURES, MEANS[g], strict=True)) / (2 * NOISE**2)
        for g, (share, _, _) in GROUPS.items()
    }
    top = max(logs.values())
    z = sum(math.exp(v - top) for v in logs.values())
    return sum(math.exp(logs[g] - top) / z * (GROUPS[g][2] - GROUPS[g][1]) for g in GROUPS)


def incremental_at_budget(scores: list[float], true_uplift: list[float], share: float) -> float:
    """True incremental purchases when the `share` of users with the highest scores
    get the offer.

    >>> incremental_at_budget([0.9, 0.1, 0.5, 0.2], [0.3, -0.2, 0.1, 0.0], 0.5)
    0.4
    """
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    top = order[: round(share * len(scores))]
    return round(sum(true_uplift[i] for i in top), 12)


def evaluate(
    train_seed: int = 1,
    test_seed: int = 2,
    n_train: int = N_TRAIN,
    n_test: int = 40_000,
    budget_share: float = BUDGET_SHARE,
    k: int = 20,
) -> dict[str, Any]:
    decider = Decider(k=k)
    response = OnlineLogistic(learning_rate=0.05, l2=1e-4, prior=0.1)
    for ev in exposures(train_seed, n_train):
        decider.observe_user(str(id(ev)), ev["segment"])
        decider.learn(ev["x"], ev["segment"], ev["treated"], ev["bought"], P_TREATED)
        response.learn_one(ev["x"], ev["bought"])
    test = list(exposures(test_seed, n_test))
    t = [e["treated"] for e in test]
    y = [e["bought"] for e in test]
    true = [e["true_uplift"] for e in test]
    learned = [decider.uplift.predict_one(decider.features(e["x"], e["segment"])) for e in test]
    resp = [response.p_one(e["x"]) for e in test]
    q_learned = qini_coefficient(learned, t, y)
    q_oracle = qini_coefficient(true, t, y)
    q_resp = qini_coefficient(resp, t, y)
    q_bayes = qini_coefficient([posterior_uplift(e["x"]) for e in test], t, y)
    inc_learned = incremental_at_budget(learned, true, budget_share)
    inc_resp = incremental_at_budget(resp, true, budget_share)
    inc_oracle = incremental_at_budget(true, true, budget_share)
    return {
        "train_seed": train_seed,
        "test_seed": test_seed,
        "n_train": n_train,
        "n_test": n_test,
        "model": decider.uplift.chosen,
        "progressive_qini": decider.uplift.qini,
        "qini": {
            "learned": q_learned,
            "oracle": q_oracle,
            "response_model": q_resp,
            "captured": q_learned / q_oracle if q_oracle else None,
            # The ceiling of a learner of these features, as a share of the oracle's.
            "posterior_captured": q_bayes / q_oracle if q_oracle else None,
            "curve": {
                name: _thin(qini_curve(s, t, y))
                for name, s in (("learned", learned), ("oracle", true), ("response", resp))
            },
        },
        "budget_share": budget_share,
        "incremental": {"learned": inc_learned, "response_model": inc_resp, "oracle": inc_oracle},
        # Only a ratio over a positive baseline means "x times as many purchases".
        "vs_response_model": inc_learned / inc_resp if inc_resp > 0 else None,
    }


def _thin(curve: list[tuple[int, float]], points: int = 50) -> list[list[float]]:
    step = max(1, len(curve) // points)
    kept = curve[::step] + ([curve[-1]] if (len(curve) - 1) % step else [])
    return [[k, round(q, 3)] for k, q in kept]
