"""JSON Schemas of every topic's records, generated from the typed models.

>>> sorted(schemas())[:3]
['ad-impressions', 'bid-adjustments', 'campaigns']
"""

from __future__ import annotations

from typing import Any

import msgspec

from online_models.erasure import ErasureConfirmation, ErasureRequest
from online_models.events import AdImpression, Campaign, ClickEvent, OrderEvent
from online_models.outputs import BidAdjustment, DeadLetter, Recommendation
from online_models.promotions.offers import Offer, OfferExposure, PromotionDecision

TOPIC_TYPES: dict[str, type[Any]] = {
    "clickstream": ClickEvent,
    "orders": OrderEvent,
    "ad-impressions": AdImpression,
    "campaigns": Campaign,
    "recommendations": Recommendation,
    "bid-adjustments": BidAdjustment,
    "dead-letter": DeadLetter,
    "erasure-requests": ErasureRequest,
    "erasure-confirmations": ErasureConfirmation,
    "promotions": Offer,
    "offer-exposures": OfferExposure,
    "promotion-decisions": PromotionDecision,
}

NOTES = {
    "clickstream": "Keyed by user_id. `ts`: epoch ms (also accepted: epoch s, ISO-8601 with"
    " zone). `item_id` is required for item events, `impression_id` for ad_click.",
    "orders": "Keyed by user_id. `total` is computed when absent; refunded/cancelled reverse"
    " the order's revenue. At most 500 items.",
    "ad-impressions": "Keyed by user_id. `cost` is the clearing price actually paid.",
    "campaigns": "Compacted, keyed by campaign_id. Unknown campaigns get these defaults.",
    "recommendations": "Keyed by user_id. `event_id` is derived from the source event.",
    "bid-adjustments": "Keyed by user_id, or campaign_id for campaign-wide pacing updates"
    " (user_id null; every partition announces the same campaign-wide factor). Schema v2:"
    " a per-user adjustment says why in `top_features` (the 3 largest weight x value"
    " log-odds contributions, readable names) and `gated` (models kept out of the value;"
    " reason `model_gated`: the click model is gated, multiplier = pacing_factor).",
    "dead-letter": "Original bytes (utf-8 or base64) with their source position and reason;"
    " `payload_privacy` says whether personal data was removed from them (`redacted`) or"
    " no payload kept (`withheld`).",
    "erasure-requests": "Keyed by user_id (raw or pseudonymous). Removes the user from every"
    ' copy the service owns (docs/operations.md "Personal data").',
    "erasure-confirmations": "Keyed by the pseudonymous user_id: what one erasure request"
    " removed (counts per kind), what is kept and why.",
    "promotions": "Keyed by offer_id: an offer's definition; `budget` is per UTC day (0: none).",
    "offer-exposures": "Keyed by user_id: an offer shown (treated) or held out as control.",
    "promotion-decisions": "Keyed by user_id: per user and eligible offer, p(buy | offer),"
    " p(buy | no offer), uplift, expected incremental margin after cost, the decision"
    " (offer / hold / control: the hash-chosen random holdout) and its top-3 reasons.",
}


def schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for topic, typ in TOPIC_TYPES.items():
        schema = msgspec.json.schema(typ)
        schema["title"] = f"ecom-stream `{topic}` record"
        schema["description"] = NOTES[topic]
        out[topic] = schema
    return out
