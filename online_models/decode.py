"""Bytes from a topic to a typed event, or a dead-letter reason. Never unpickles.

>>> decode_input("clickstream", b'{"event_id":"e","ts":1511658000,"user_id":"u","type":"search"}')
ClickEvent(event_id='e', ts=1511658000000, user_id='u', type='search')
>>> decode_input("orders", b"not json")
Traceback (most recent call last):
...
online_models.decode.DecodeError: not_json: input is not valid JSON
>>> decode_input("orders", b"[" * 100 + b"]" * 100)
Traceback (most recent call last):
...
online_models.decode.DecodeError: too_deep: JSON nested 100 levels deep; the limit is 32
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
import numpy as np
import orjson

from online_models.events import (
    AdImpression,
    Campaign,
    ClickEvent,
    InputEvent,
    OrderEvent,
    normalize,
)
from online_models.shared_ids import share_ids
from online_models.timeparse import TimestampError

CLICKSTREAM: Final = "clickstream"
ORDERS: Final = "orders"
IMPRESSIONS: Final = "ad-impressions"
CAMPAIGNS: Final = "campaigns"

# Logical stream -> event type. Topic names are configurable; the shell maps each
# configured topic to one of these logical names before decoding.
EVENT_TYPES: Final[dict[str, type[Any]]] = {
    CLICKSTREAM: ClickEvent,
    ORDERS: OrderEvent,
    IMPRESSIONS: AdImpression,
    CAMPAIGNS: Campaign,
}
_FAST: Final = {name: msgspec.json.Decoder(t) for name, t in EVENT_TYPES.items()}

DEFAULT_MAX_BYTES: Final = 64 * 1024
# Our schemas nest three levels; parsers recurse per level (msgspec raises
# RecursionError near 1,000), so depth is checked before any parse.
DEFAULT_MAX_DEPTH: Final = 32

# Reasons, stable strings used as the dead-letter `reason` and as a metric label.
REASONS: Final = (
    "empty_value",
    "oversized",
    "too_deep",
    "pickle_payload",
    "not_json",
    "not_object",
    "missing_field",
    "wrong_type",
    "unknown_type",
    "negative_value",
    "bad_timestamp",
    "too_many_items",
    "out_of_range",
    "invalid_value",
)


class DecodeError(ValueError):
    """An input that cannot be processed; `reason` is one of REASONS."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.detail = message


def decode_input(
    stream: str,
    raw: bytes | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """Decode one record of logical `stream`; raise DecodeError with a reason."""
    if not raw:  # None is a tombstone; neither it nor b"" is an event
        raise DecodeError("empty_value", "the record has no value (tombstone or empty)")
    if len(raw) > max_bytes:
        raise DecodeError("oversized", f"{len(raw)} bytes exceed the limit of {max_bytes}")
    # Cheap bound first: a record with few brackets cannot be nested deeper than that.
    if raw.count(b"[") + raw.count(b"{") > max_depth:
        depth = nesting_depth(raw)
        if depth > max_depth:
            raise DecodeError(
                "too_deep", f"JSON nested {depth} levels deep; the limit is {max_depth}"
            )
    try:
        # Fast path: one pass that parses and validates; errors are re-diagnosed below.
        return share_ids(_FAST[stream].decode(raw))
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    return _diagnose(stream, raw)


# A JSON string literal (escapes included), written unrolled so the regex engine
# does not branch per character.
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPEN: Final = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def nesting_depth(raw: bytes) -> int:
    """Deepest bracket nesting of JSON text, brackets inside strings not counted.
    Iterative (a regex and a cumulative sum), so no input can exhaust the stack; it
    runs only for records with more brackets than the limit.

    >>> nesting_depth(b'{"a": [1, {"b": "[[[\\\\"}], "c": {"d": "\\"]]"}}')
    3
    """
    steps = _OPEN[np.frombuffer(_STRING.sub(b'""', raw), dtype=np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def decode_dict(stream: str, obj: dict[str, Any]) -> InputEvent | Campaign:
    """Validate an already-parsed object (used by importers and tests)."""
    try:
        event: InputEvent | Campaign = msgspec.convert(normalize(obj), EVENT_TYPES[stream])
        return share_ids(event)
    except TimestampError as exc:
        raise DecodeError("bad_timestamp", str(exc)) from None
    except msgspec.ValidationError as exc:
        raise DecodeError(_classify(str(exc)), str(exc)) from None


def _diagnose(stream: str, raw: bytes) -> Any:
    return decode_dict(stream, parse_object(raw))


def parse_object(raw: bytes) -> dict[str, Any]:
    """The JSON object of `raw`; DecodeError pickle_payload, not_json or not_object."""
    if _looks_pickled(raw):
        raise DecodeError("pickle_payload", "input looks like a Python pickle; refused")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise DecodeError("not_json", "input is not valid JSON") from None
    if not isinstance(obj, dict):
        raise DecodeError("not_object", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _looks_pickled(raw: bytes) -> bool:
    # Protocol 2+ starts with PROTO (0x80) and a version byte. Protocols 0 and 1 start
    # with an opcode and end with STOP ('.'); no JSON text ends with '.'.
    if len(raw) >= 2 and raw[0] == 0x80 and 2 <= raw[1] <= 5:
        return True
    return raw[:1] in _PICKLE_OPENERS and raw.rstrip().endswith(b".")


_PICKLE_OPENERS: Final = frozenset(bytes([c]) for c in b"(]}cVSIFLNGJKMXTUabde")


_RULES: Final = (
    (re.compile(r"missing required field"), "missing_field"),
    (re.compile(r"Invalid enum value|Expected `str` matching|literal", re.I), "unknown_type"),
    (re.compile(r"timestamp|time zone", re.I), "bad_timestamp"),
    (re.compile(r"too many items"), "too_many_items"),
    (re.compile(r"must be within 0\.\.|must be positive|must not be negative"), "negative_value"),
    # The types' bounds (online_models/events.py): below 0 (or 1 for a count) is a
    # negative value; any other bound, e.g. a ROAS target of 5e-324, is out of range.
    (re.compile(r"^Expected `\w+` >= [01](\.0)? "), "negative_value"),
    (re.compile(r"^Expected `\w+` [<>]=? |must be within"), "out_of_range"),
    (re.compile(r"^Expected `"), "wrong_type"),
)


def _classify(message: str) -> str:
    for pattern, reason in _RULES:
        if pattern.search(message):
            return reason
    return "invalid_value"
