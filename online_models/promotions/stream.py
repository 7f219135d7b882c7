"""Promotions in event time: offers, exposures and orders in; decisions and the
outcomes the uplift learners learned from out.

An exposure (treated, or held out as control) is decided when it arrives, with the
models as they are then, and waits for its outcome: a purchase by the user within the
offer's window (`Offer.window_s`) labels it bought at the purchase's time; a window
that passes without one labels it not bought at the first event after its end. Each
label is learned by the decider's uplift learners (randomised: p_treated =
1 - control share) and by the purchase-intent model (p(purchase within the window),
ignoring the offer: the response model a targeting by purchase probability uses), and
returned as an `Outcome` with the scores made before it (predict, then learn).

>>> from online_models.promotions.offers import Offer, OfferExposure
>>> s = PromotionStream(k=1)
>>> s.offer(Offer(offer_id="o", cost=1.0, window_s=3600, control_share=0.5))
>>> ev = OfferExposure(event_id="e", ts=1_700_000_000_000, user_id="u", offer_id="o",
...     treated=True, features={"a": 1.0})
>>> s.exposure(ev).offer_id
'o'
>>> [o.bought for o in s.order("u", ev.ts + 60_000)]
[True]
>>> s.pending_count()
0
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from online_models.models import OnlineLogistic
from online_models.promotions.decider import Decider
from online_models.promotions.offers import Offer, OfferExposure, PromotionDecision


@dataclass
class Outcome:
    """One exposure's label and the scores made for it before the label."""

    exposure: OfferExposure
    uplift: float  # the learned uplift at the decision
    intent: float  # p(purchase) of the response model at the decision
    bought: bool
    ts: int  # when the label was known


@dataclass
class _Pending:
    exposure: OfferExposure
    x: dict[str, float]
    p_treated: float
    uplift: float
    intent: float
    deadline: int
    done: bool = False


class PromotionStream:
    """The promotion decision and its learning, per partition, in event time.

    Parameters
    ----------
    max_per_day
        Offers one user may receive per UTC day (`Decider`).
    k
        Users a segment needs before it is targeted by its name (`Decider`).
    intent_learning_rate
        AdaGrad step of the purchase-intent (response) model.
    """

    def __init__(self, max_per_day: int = 1, k: int = 20, intent_learning_rate: float = 0.05):
        self.decider = Decider(max_per_day=max_per_day, k=k)
        self.intent = OnlineLogistic(intent_learning_rate, 1e-4, 0.1)
        self.offers: dict[str, Offer] = {}
        self._heap: list[tuple[int, int, _Pending]] = []
        self._by_user: dict[str, list[_Pending]] = {}
        self._n = 0
        self.unknown_offer = 0
        self.not_eligible = 0

    def offer(self, offer: Offer) -> None:
        """An offer's definition; a later one for the same id replaces it."""
        self.offers[offer.offer_id] = offer

    def exposure(self, ev: OfferExposure) -> PromotionDecision | None:
        """The decision for an exposure; None for an unknown offer or an ineligible user."""
        offer = self.offers.get(ev.offer_id)
        if offer is None:
            self.unknown_offer += 1
            return None
        if offer.eligible_segments and ev.segment not in offer.eligible_segments:
            self.not_eligible += 1
            return None
        x = {"bias": 1.0, **ev.features}
        decision = self.decider.decide(ev.user_id, offer, x, ev.ts, ev.segment or "any")
        p = _Pending(
            ev,
            x,
            1.0 - offer.control_share,
            decision.uplift,
            self.intent.p_one(x),
            ev.ts + offer.window_s * 1000,
        )
        self._n += 1
        heapq.heappush(self._heap, (p.deadline, self._n, p))
        self._by_user.setdefault(ev.user_id, []).append(p)
        return decision

    def order(self, user_id: str, ts: int) -> list[Outcome]:
        """A placed order: every open exposure of the user is labelled bought."""
        out = list(self.advance(ts))
        for p in self._by_user.pop(user_id, []):
            if not p.done and p.exposure.ts <= ts <= p.deadline:
                out.append(self._learn(p, True, ts))
        return out

    def advance(self, ts: int) -> Iterator[Outcome]:
        """Exposures whose window ended before `ts`, labelled not bought."""
        while self._heap and self._heap[0][0] < ts:
            _, _, p = heapq.heappop(self._heap)
            if not p.done:
                yield self._learn(p, False, p.deadline)
            mine = self._by_user.get(p.exposure.user_id)
            if mine is not None:
                mine[:] = [q for q in mine if not q.done]
                if not mine:
                    del self._by_user[p.exposure.user_id]

    def pending_count(self) -> int:
        return sum(1 for _, _, p in self._heap if not p.done)

    def _learn(self, p: _Pending, bought: bool, ts: int) -> Outcome:
        p.done = True
        ev = p.exposure
        self.decider.learn(p.x, ev.segment or "any", ev.treated, bought, p.p_treated)
        self.intent.learn_one(p.x, bought)
        return Outcome(ev, p.uplift, p.intent, bought, ts)
