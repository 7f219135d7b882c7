"""Typed output events. Every `event_id` is derived from the source event, so a
redelivered input yields the same id and the bidder can drop the duplicate.

>>> stable_id("rec", "clickstream:e1") == stable_id("rec", "clickstream:e1")
True
>>> len(stable_id("rec", "clickstream:e1"))
32
"""

from __future__ import annotations

import hashlib

import msgspec

SCHEMA_VERSION = 1


def stable_id(*parts: str) -> str:
    return hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()


class RecommendedItem(msgspec.Struct, array_like=False):
    item_id: str
    score: float


class Recommendation(msgspec.Struct, kw_only=True):
    """Topic `recommendations`, keyed by user_id."""

    event_id: str
    ts: int
    user_id: str
    items: list[RecommendedItem]
    strategy: str
    model_version: str
    source_event_id: str
    schema_version: int = SCHEMA_VERSION


class BidAdjustment(msgspec.Struct, kw_only=True):
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
