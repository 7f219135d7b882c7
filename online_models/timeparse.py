"""Event-time parsing: every timestamp in the domain is epoch milliseconds (int).

>>> to_epoch_ms(1511658000)          # seconds are recognised by magnitude
1511658000000
>>> to_epoch_ms("2017-11-26T01:00:00Z")
1511658000000
>>> to_epoch_ms("2017-11-26T02:00:00+01:00")
1511658000000
"""

from __future__ import annotations

from datetime import datetime

# Plausible event-time range: 2000-01-01 .. 2100-01-01. Anything outside is a
# producer bug (unit confusion, zero, garbage) and goes to the dead-letter topic.
MIN_TS_MS = 946_684_800_000
MAX_TS_MS = 4_102_444_800_000


class TimestampError(ValueError):
    """The value cannot be read as a plausible event time."""


def to_epoch_ms(value: object) -> int:
    """Read epoch seconds/milliseconds/microseconds or ISO-8601 with a zone."""
    if isinstance(value, bool):
        raise TimestampError("timestamp must be a number or an ISO-8601 string")
    if isinstance(value, int | float):
        ms = _number_to_ms(float(value))
    elif isinstance(value, str):
        ms = _iso_to_ms(value)
    else:
        raise TimestampError("timestamp must be a number or an ISO-8601 string")
    if not MIN_TS_MS <= ms <= MAX_TS_MS:
        raise TimestampError(f"timestamp {value!r} is outside 2000..2100")
    return ms


def _number_to_ms(x: float) -> int:
    if x != x or x in (float("inf"), float("-inf")):
        raise TimestampError("timestamp is not finite")
    # Units are told apart by magnitude: seconds < 1e11 < ms < 1e14 < us.
    if abs(x) < 1e11:
        return round(x * 1000)
    if abs(x) < 1e14:
        return round(x)
    return round(x / 1000)


def _iso_to_ms(text: str) -> int:
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError as exc:
        raise TimestampError(f"unparseable timestamp {text!r}") from exc
    if dt.tzinfo is None:
        raise TimestampError(f"timestamp {text!r} has no time zone")
    return round(dt.timestamp() * 1000)
