"""The per-user, per-offer promotion decision.

For an eligible user and offer: p(buy | offer) and p(buy | no offer) from the two-model
learner, the uplift from the learner the Qini selector chose, the expected incremental
margin after the offer's cost, and offer / hold / control with the top-3 reasons.

* **Control**: a share `offer.control_share` of (user, offer, UTC day) is held out,
  decided by a hash, not a random draw, so a replay decides exactly as the live worker
  did and the held-out data stays randomised (independent of the features).
* **Budget**: an offer's daily budget is paced by the campaign pacer
  (`online_models.bidding.Pacer`); a spent budget holds every further offer that day.
* **Frequency**: at most `max_per_day` offers per user per UTC day.
* **k-anonymity**: a segment seen with fewer than `k` users is not targeted by its own
  name; its users are decided as segment "other".

>>> from online_models.promotions.offers import Offer
>>> d = Decider(k=1)
>>> offer = Offer(offer_id="o1", cost=1.0, margin=20.0, control_share=0.1)
>>> out = d.decide("u1", offer, {"bias": 1.0}, ts=1_700_000_000_000, segment="s")
>>> out.decision in ("offer", "hold", "control"), len(out.reasons) <= 3
(True, True)
>>> Decider.from_state(d.to_state()).per_user_day == d.per_user_day
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from online_models.bidding import HOUR_MS, Pacer
from online_models.events import Campaign
from online_models.outputs import stable_id
from online_models.promotions.offers import Decision, Offer, PromotionDecision, Reason
from online_models.promotions.uplift import UpliftSelector

DAY_MS = 86_400_000
MODEL_VERSION = "uplift1"
PACER_ARGS: dict[str, Any] = {
    "gain": 0.5,
    "low": 0.1,
    "high": 4.0,
    "integral": 0.3,
    "window_ms": 2 * HOUR_MS,
}


def in_control(user_id: str, offer_id: str, day: int, share: float) -> bool:
    """Whether (user, offer, day) is held out: a hash, so replay = live.

    >>> in_control("u1", "o1", 19000, 0.5) == in_control("u1", "o1", 19000, 0.5)
    True
    >>> sum(in_control(f"u{i}", "o1", 19000, 0.1) for i in range(10_000))
    994
    """
    h = hashlib.blake2b(f"{user_id}|{offer_id}|{day}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64 < share


class Decider:
    """Offer or hold, per user and offer, by expected incremental margin.

    Parameters
    ----------
    max_per_day
        Offers one user may receive per UTC day.
    k
        Users a segment needs before it is targeted by name.
    """

    def __init__(self, max_per_day: int = 1, k: int = 20) -> None:
        self.max_per_day = max_per_day
        self.k = k
        self.uplift = UpliftSelector()
        self.pacer = Pacer(**PACER_ARGS)
        self.per_user_day: dict[str, list[int]] = {}  # user -> [day, offers that day]
        self.segment_users: dict[str, int] = {}
        self._seen: set[str] = set()

    def observe_user(self, user_id: str, segment: str) -> None:
        key = f"{segment}|{user_id}"
        if key not in self._seen:
            self._seen.add(key)
            self.segment_users[segment] = self.segment_users.get(segment, 0) + 1

    def public_segment(self, segment: str) -> str:
        return segment if self.segment_users.get(segment, 0) >= self.k else "other"

    def features(self, x: Mapping[str, float], segment: str) -> dict[str, float]:
        """x, its pairwise products (uplift differs by combinations: frequent buyers
        are sure things or, if annoyed by offers, sleeping dogs) and the public segment."""
        out = dict(x)
        keys = sorted(k for k in x if k != "bias")
        for i, a in enumerate(keys):
            for b in keys[i:]:
                out[f"{a}*{b}"] = x[a] * x[b]
        out[f"segment={self.public_segment(segment)}"] = 1.0
        return out

    def learn(
        self, x: Mapping[str, float], segment: str, treated: bool, bought: bool, p_treated: float
    ) -> None:
        """An exposure's outcome, joined after its window (or at its purchase)."""
        self.uplift.learn_one(self.features(x, segment), treated, bought, p_treated)

    def decide(
        self, user_id: str, offer: Offer, x: Mapping[str, float], ts: int, segment: str
    ) -> PromotionDecision:
        day = ts // DAY_MS
        self.observe_user(user_id, segment)
        fx = self.features(x, segment)
        p1, p0 = self.uplift.predict_both(fx)
        u = max(-1.0, min(1.0, self.uplift.predict_one(fx)))
        # The cost is paid on redemption, i.e. by those who buy with the offer.
        gain = u * offer.margin - p1 * offer.cost
        campaign = Campaign(campaign_id=f"promo:{offer.offer_id}", daily_budget=offer.budget)
        pacing = self.pacer.factor(campaign.campaign_id, ts) if offer.budget else 1.0
        seen = self.per_user_day.get(user_id)
        count = seen[1] if seen and seen[0] == day else 0
        decision: Decision
        if in_control(user_id, offer.offer_id, day, offer.control_share):
            decision = "control"
        elif gain > 0 and pacing > 0 and count < self.max_per_day:
            decision = "offer"
            self.per_user_day[user_id] = [day, count + 1]
            if offer.budget:
                self.pacer.spend(campaign, p1 * offer.cost, ts)
        else:
            decision = "hold"
        reasons = [
            Reason("uplift x margin", round(u * offer.margin, 6)),
            Reason("expected cost", round(-p1 * offer.cost, 6)),
            Reason("pacing factor", round(pacing, 6)),
            Reason("offers today", float(count)),
        ]
        reasons.sort(key=lambda r: -abs(r.value))
        return PromotionDecision(
            event_id=stable_id("promo", user_id, offer.offer_id, str(ts)),
            ts=ts,
            user_id=user_id,
            offer_id=offer.offer_id,
            p_offer=min(max(p1, 0.0), 1.0),
            p_no_offer=min(max(p0, 0.0), 1.0),
            uplift=u,
            expected_incremental_margin=round(gain, 6),
            decision=decision,
            reasons=reasons[:3],
            model=self.uplift.chosen,
            model_version=MODEL_VERSION,
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "max_per_day": self.max_per_day,
            "k": self.k,
            "uplift": self.uplift.to_state(),
            "pacer": self.pacer.to_state(),
            "per_user_day": self.per_user_day,
            "segment_users": self.segment_users,
            "seen": sorted(self._seen),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Decider:
        d = cls(int(state["max_per_day"]), int(state["k"]))
        d.uplift = UpliftSelector.from_state(state["uplift"])
        d.pacer = Pacer.from_state(state["pacer"], **PACER_ARGS)
        d.per_user_day = {u: [int(a), int(b)] for u, (a, b) in state["per_user_day"].items()}
        d.segment_users = {k: int(v) for k, v in state["segment_users"].items()}
        d._seen = set(state["seen"])
        return d
