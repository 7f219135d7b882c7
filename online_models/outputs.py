"""Typed output events. Every `event_id` is derived from the source event, so a
redelivered input yields the same id and the bidder can drop the duplicate.

>>> stable_id("rec", "clickstream:e1") == stable_id("rec", "clickstream:e1")
True
>>> len(stable_id("rec", "clickstream:e1"))
32
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import msgspec

SCHEMA_VERSION = 1


def stable_id(*parts: str) -> str:
    return hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()


def round6(x: float) -> float:
    """`x` to 6 decimals for output, faster than round(x, 6); it can differ from
    round() by one in the 6th decimal on near-ties.

    >>> round6(0.1234565001), round6(2.0), round6(1e-9)
    (0.123457, 2.0, 0.0)
    """
    return math.floor(x * 1e6 + 0.5) / 1e6


# gc=False: see online_models.events.
class RecommendedItem(msgspec.Struct, gc=False):
    item_id: str
    score: float


class Recommendation(msgspec.Struct, kw_only=True, gc=False):
    """Topic `recommendations`, keyed by user_id."""

    event_id: str
    ts: int
    user_id: str
    items: list[RecommendedItem]
    strategy: str
    model_version: str
    source_event_id: str
    schema_version: int = SCHEMA_VERSION


class BidAdjustment(msgspec.Struct, kw_only=True, gc=False):
    """Topic `bid-adjustments`, keyed by user_id (campaign_id for campaign-wide pacing)."""

    event_id: str
    ts: int
    user_id: str | None
    campaign_id: str
    multiplier: float
    p_click: float | None
    p_conversion: float | None
    expected_revenue: float | None
    expected_roas: float | None
    pacing_factor: float
    reason: str
    ttl_s: int
    model_version: str
    source_event_id: str
    # Informational since pacing became campaign-wide (issue 9): the partition that
    # sent this adjustment, and the partition count. Every partition announces the same
    # campaign-wide pacing factor; a bidder applies the newest one, whatever its shard.
    shard: int
    shards: int
    schema_version: int = SCHEMA_VERSION


class DeadLetter(msgspec.Struct, kw_only=True):
    """Topic `dead-letter`: the original bytes (base64 when not UTF-8) and why."""

    source_topic: str
    source_partition: int
    source_offset: int
    reason: str
    error: str
    payload: str
    payload_encoding: str
    key: str | None = None
    schema_version: int = SCHEMA_VERSION


Output = Recommendation | BidAdjustment

_ENCODER = msgspec.json.Encoder()


def encode_output(obj: msgspec.Struct) -> bytes:
    """The JSON bytes of an output event: one encoder for the live topics and replays."""
    return _ENCODER.encode(obj)


def encode_lines(objs: Sequence[msgspec.Struct]) -> bytes:
    """Newline-delimited JSON of many outputs, each line equal to `encode_output`.

    >>> rec = RecommendedItem("a", 0.5)
    >>> encode_lines([rec, rec]).split(b"\\n") == [encode_output(rec)] * 2 + [b""]
    True
    """
    return _ENCODER.encode_lines(objs)
