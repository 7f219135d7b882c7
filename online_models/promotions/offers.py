"""Typed promotion inputs (offer definitions, exposures) and the decision output.

Bounds are written into the types, as in `online_models.events`: the decoder refuses
values outside them and the JSON Schemas state them.

>>> import msgspec
>>> o = msgspec.json.decode(b'{"offer_id": "o1", "cost": 2.0, "budget": 100.0}', type=Offer)
>>> o.control_share, o.window_s
(0.1, 604800)
>>> msgspec.json.decode(b'{"offer_id": "o1", "cost": 2.0, "control_share": 0.0}', type=Offer)
Traceback (most recent call last):
...
msgspec.ValidationError: Expected `float` >= 0.01 - at `$.control_share`
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from online_models.events import MAX_PRICE
from online_models.timeparse import MAX_TS_MS, MIN_TS_MS

Money = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_PRICE)]
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Uplift = Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)]
# A control share of 0 would stop the models learning from randomised data (clause 1);
# above one half the offer is mostly a holdout experiment, not a promotion.
ControlShare = Annotated[float, msgspec.Meta(ge=0.01, le=0.5)]
Ts = Annotated[int, msgspec.Meta(ge=MIN_TS_MS, le=MAX_TS_MS)]
WindowS = Annotated[int, msgspec.Meta(ge=60, le=90 * 86_400)]
Decision = Literal["offer", "hold", "control"]


class Offer(msgspec.Struct, kw_only=True, frozen=True):
    """Topic `promotions`, keyed by offer_id: one offer's definition.

    `cost` is what one redeemed offer costs (a coupon's value or the discount given
    away); `budget` the total cost the offer may spend (0: unlimited);
    `eligible_segments` the RFM segments it may go to (empty: all);
    `window_s` the time after an exposure within which a purchase counts as its outcome.
    """

    TOPIC: ClassVar[str] = "promotions"

    offer_id: str
    cost: Money
    margin: Money = 10.0
    budget: Money = 0.0
    control_share: ControlShare = 0.1
    window_s: WindowS = 7 * 86_400
    eligible_segments: list[str] = msgspec.field(default_factory=list)


class UserOffer(msgspec.Struct, kw_only=True, frozen=True):
    """What an exposure and a decision share: one user and one offer at an event time."""

    event_id: str
    ts: Ts
    user_id: str
    offer_id: str

    def routing_key(self) -> bytes:
        return self.user_id.encode()


class OfferExposure(UserOffer, kw_only=True, frozen=True):
    """Topic `offer-exposures`, keyed by user_id: an offer shown (treated) or held out."""

    TOPIC: ClassVar[str] = "offer-exposures"

    treated: bool
    # What the offer was decided on: the user's features then (profile-derived live; the
    # market's features in the known-truth market) and the user's RFM segment.
    features: dict[str, float] = msgspec.field(default_factory=dict)
    segment: str = ""
    # Known only in the known-truth market: the true uplift of this exposure.
    true_uplift: Uplift | None = None


class Reason(msgspec.Struct, frozen=True, gc=False):
    """One of the three largest reasons behind a decision, as a signed contribution."""

    name: str
    value: float


class PromotionDecision(UserOffer, kw_only=True, frozen=True):
    """Topic `promotion-decisions`, keyed by user_id: one user and eligible offer."""

    TOPIC: ClassVar[str] = "promotion-decisions"

    p_offer: Probability
    p_no_offer: Probability
    uplift: Uplift
    expected_incremental_margin: float
    decision: Decision
    reasons: list[Reason] = msgspec.field(default_factory=list)
    model: str
    model_version: str
