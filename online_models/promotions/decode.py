"""Bytes of the promotions topics to typed events, or a dead-letter reason.

The reasons are the decoder's (`online_models.decode.REASONS`), so a bad offer or
exposure is counted and dead-lettered like any other input. Times are milliseconds.

>>> decode_promotion(PROMOTIONS, b'{"offer_id": "o1", "cost": 2.0}').offer_id
'o1'
>>> line = b'{"event_id": "e", "ts": 1700000000000, "user_id": "u", "offer_id": "o"}'
>>> decode_promotion(EXPOSURES, line)
Traceback (most recent call last):
...
online_models.decode.DecodeError: missing_field: Object missing required field `treated`
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from online_models.decode import DEFAULT_MAX_BYTES, DecodeError
from online_models.promotions.offers import Offer, OfferExposure

PROMOTIONS: Final = "promotions"
EXPOSURES: Final = "offer-exposures"
PROMO_TYPES: Final[dict[str, type[Any]]] = {PROMOTIONS: Offer, EXPOSURES: OfferExposure}
_DECODERS: Final = {name: msgspec.json.Decoder(t) for name, t in PROMO_TYPES.items()}


def decode_promotion(topic: str, raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """An `Offer` or `OfferExposure`; DecodeError with the decoder's reasons."""
    if not raw:
        raise DecodeError("empty_value", "the record has no value (tombstone or empty)")
    if len(raw) > max_bytes:
        raise DecodeError("oversized", f"{len(raw)} bytes exceed the limit of {max_bytes}")
    try:
        return _DECODERS[topic].decode(raw)
    except msgspec.ValidationError as exc:
        text = str(exc)
        if "missing required field" in text:
            raise DecodeError("missing_field", text) from None
        if ">=" in text or "<=" in text:
            raise DecodeError("out_of_range", text) from None
        raise DecodeError("wrong_type", text) from None
    except msgspec.DecodeError:
        raise DecodeError("not_json", "input is not valid JSON") from None
