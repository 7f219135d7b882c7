"""The promotions section of a replay (issue 22, clause 3): decisions made by the
domain's `PromotionStream` as the inputs arrive, and the Qini report of its outcomes.

Protocol: a time split. Outcomes of exposures from `evaluate_from` on (default: the
last third of the exposures, by event time) are judged; every score is the one made at
the exposure's decision, before its label (the models keep learning, as live). On them:
the Qini coefficient and curve of the learned uplift, of the true uplift recorded per
exposure (the oracle; known-truth market only) and of the response model (purchase
intent, ignoring the offer: targeting the likeliest buyers); `qini.captured` = learned /
oracle; the true incremental purchases when the `budget_share` of judged users with the
highest scores get the offer, and `vs_response_model` = learned / response model there.
Purchase intent is scored on the same outcomes by AUC and log-loss against the base rate
of the outcomes before the split.

>>> r = PromoReplay()
>>> r.active
False
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from backtest.promo_truth import BUDGET_SHARE, _thin, incremental_at_budget
from online_models.promotions.decode import EXPOSURES, PROMOTIONS
from online_models.promotions.offers import OfferExposure, PromotionDecision
from online_models.promotions.stream import Outcome, PromotionStream
from online_models.promotions.uplift import qini_coefficient, qini_curve

PROMO_TOPICS = frozenset({PROMOTIONS, EXPOSURES})
HELD_OUT_SHARE = 1.0 / 3.0


class PromoReplay:
    """What the replay feeds the promotions domain and collects from it."""

    def __init__(
        self, evaluate_from: int | None = None, budget_share: float = BUDGET_SHARE
    ) -> None:
        self.stream = PromotionStream()
        self.evaluate_from = evaluate_from
        self.budget_share = budget_share
        self.outcomes: list[Outcome] = []
        self.decisions: dict[str, int] = {}
        self.exposure_ts: list[int] = []

    @property
    def active(self) -> bool:
        return bool(self.exposure_ts)

    def feed(self, topic: str, ev: Any) -> list[PromotionDecision]:
        if topic == PROMOTIONS:
            self.stream.offer(ev)
            return []
        assert isinstance(ev, OfferExposure)
        self.outcomes.extend(self.stream.advance(ev.ts))
        self.exposure_ts.append(ev.ts)
        decision = self.stream.exposure(ev)
        if decision is None:
            return []
        self.decisions[decision.decision] = self.decisions.get(decision.decision, 0) + 1
        return [decision]

    def order(self, user_id: str, ts: int) -> None:
        if self.active:
            self.outcomes.extend(self.stream.order(user_id, ts))

    def section(self) -> dict[str, Any]:
        # The selector's choice as the stream left it: the windows still open end next,
        # all at once and all unbought, which would say nothing about either learner.
        model, progressive = self.stream.decider.uplift.chosen, self.stream.decider.uplift.qini
        self.outcomes.extend(self.stream.advance(2**62))
        split = self.evaluate_from
        if split is None:
            times = sorted(self.exposure_ts)
            split = times[min(len(times) - 1, int(len(times) * (1 - HELD_OUT_SHARE)))]
        before = [o for o in self.outcomes if o.exposure.ts < split]
        judged = sorted((o for o in self.outcomes if o.exposure.ts >= split), key=_key)
        out: dict[str, Any] = {
            "protocol": "time split: outcomes of exposures from evaluate_from on, scored "
            "at their decision (predict, then learn)",
            "evaluate_from": split,
            "exposures": len(self.exposure_ts),
            "outcomes": {"learned_before": len(before), "judged": len(judged)},
            "decisions": dict(sorted(self.decisions.items())),
            "unknown_offer": self.stream.unknown_offer,
            "not_eligible": self.stream.not_eligible,
            "model": model,
            "progressive_qini": progressive,
        }
        t = [o.exposure.treated for o in judged]
        if not judged or all(t) or not any(t):
            out["qini"] = None
            out["reason"] = "no judged outcomes in both arms"
            return out
        y = [o.bought for o in judged]
        scores = {"learned": [o.uplift for o in judged], "response": [o.intent for o in judged]}
        truth = [o.exposure.true_uplift for o in judged]
        known = [u for u in truth if u is not None]
        if len(known) == len(judged):
            scores["oracle"] = known
        q = {name: qini_coefficient(s, t, y) for name, s in scores.items()}
        oracle = q.get("oracle")
        out["qini"] = {
            "learned": q["learned"],
            "response_model": q["response"],
            "oracle": oracle,
            "captured": q["learned"] / oracle if oracle else None,
            "curve": {name: _thin(qini_curve(s, t, y)) for name, s in scores.items()},
        }
        out["budget_share"] = self.budget_share
        if "oracle" in scores:
            inc = {
                name: incremental_at_budget(s, known, self.budget_share)
                for name, s in scores.items()
            }
            out["incremental"] = {
                "learned": inc["learned"],
                "response_model": inc["response"],
                "oracle": inc["oracle"],
            }
            out["vs_response_model"] = (
                inc["learned"] / inc["response"] if inc["response"] > 0 else None
            )
        else:
            out["incremental"] = None
            out["vs_response_model"] = None
        base = sum(o.bought for o in before) / len(before) if before else None
        out["purchase_intent"] = intent_quality(scores["response"], y, base)
        return out


def _key(o: Outcome) -> tuple[int, str]:
    return o.exposure.ts, o.exposure.event_id


def intent_quality(p: list[float], y: list[bool], base: float | None) -> dict[str, Any]:
    """AUC and log-loss of purchase intent, and the log-loss of the base rate.

    >>> intent_quality([0.9, 0.2, 0.8, 0.1], [True, False, True, False], 0.5)["auc"]
    1.0
    """
    ps = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    ys = np.asarray(y, dtype=bool)
    pos, neg = int(ys.sum()), int((~ys).sum())
    # Ties share their mean rank (the Mann-Whitney form of the AUC).
    _, inverse, counts = np.unique(ps, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    auc = float((ranks[ys].sum() - pos * (pos + 1) / 2) / (pos * neg)) if pos and neg else None

    def log_loss(q: np.ndarray) -> float:
        return float(-np.mean(np.where(ys, np.log(q), np.log(1 - q))))

    out: dict[str, Any] = {"n": len(ps), "auc": auc, "log_loss": log_loss(ps)}
    if base is not None and 0 < base < 1:
        out["base_rate"] = base
        out["base_rate_log_loss"] = log_loss(np.full(len(ps), base))
    return out if math.isfinite(out["log_loss"]) else {**out, "log_loss": None}
