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
from typing import Annotated, Any, ClassVar, NamedTuple

import msgspec

SCHEMA_VERSION = 1
# bid-adjustments v2 (issue 11): `top_features` and `gated` explain each adjustment.
BID_SCHEMA_VERSION = 2


def stable_id(*parts: str) -> str:
    return hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()


# What an output id stands for: the record it was made from. All copies of one id
# carry the same values here; a redelivered record recomputed with newer knowledge may
# change the rest (items, scores, multiplier, model_version). README: same id, first
# copy wins.
IDENTITY_FIELDS = ("event_id", "ts", "user_id", "source_event_id", "campaign_id", "key_id", "shard")


class Origin(NamedTuple):
    """The input event behind an output: `event_id` names it to consumers (the output's
    `source_event_id`), `seed` identifies it for output ids: its topic, id and a hash of
    its content, so that two different records sharing one event id never share an
    output id, while a redelivery of the same record (the same content) gets the same
    ids."""

    event_id: str
    seed: str


_CANONICAL = msgspec.json.Encoder()


def origin_of(source: str, ev: Any) -> Origin:
    """The origin of a decoded input event: hashed from its canonical encoding (the
    typed event, not the producer's bytes), so whitespace, key order or an ISO vs epoch
    timestamp in the record do not change the ids.

    >>> from online_models.events import ClickEvent
    >>> a = ClickEvent(event_id="e1", ts=1_700_000_000_000, user_id="u", type="view", item_id="i")
    >>> b = ClickEvent(event_id="e1", ts=1_700_000_000_000, user_id="u", type="view", item_id="j")
    >>> origin_of("clickstream", a).event_id
    'clickstream:e1'
    >>> origin_of("clickstream", a) == origin_of("clickstream", a)   # a redelivery
    True
    >>> origin_of("clickstream", a).seed == origin_of("clickstream", b).seed   # same id
    False
    """
    event_id = f"{source}:{ev.event_id}"
    digest = hashlib.blake2b(_CANONICAL.encode(ev), digest_size=8).hexdigest()
    return Origin(event_id, f"{event_id}#{digest}")


def round6(x: float) -> float:
    """`x` to 6 decimals for output, faster than round(x, 6); it can differ from
    round() by one in the 6th decimal on near-ties.

    >>> round6(0.1234565001), round6(2.0), round6(1e-9)
    (0.123457, 2.0, 0.0)
    """
    return math.floor(x * 1e6 + 0.5) / 1e6


# What consumers may rely on, written into the schema (the engine computes every
# number finite and within these bounds; tests/test_fuzz_finite.py checks it).
NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


# gc=False: see online_models.events.
class RecommendedItem(msgspec.Struct, gc=False):
    item_id: str
    score: float


class Recommendation(msgspec.Struct, kw_only=True, gc=False):
    """Topic `recommendations`, keyed by user_id."""

    TOPIC: ClassVar[str] = "recommendations"  # the logical topic it is sent to

    event_id: str
    ts: int
    user_id: str
    items: list[RecommendedItem]
    strategy: str
    model_version: str
    source_event_id: str
    schema_version: int = SCHEMA_VERSION
    # The pseudonym key `user_id` was made with (issue 21); None: ids not pseudonymised.
    key_id: str | None = None

    def routing_key(self) -> bytes:
        return self.user_id.encode()


class FeatureContribution(msgspec.Struct, gc=False):
    """One feature's share of a model's log-odds for this bid: weight x value, relative
    to the model's base rate (positive: raises the predicted probability)."""

    model: str  # "click" | "conversion"
    feature: str  # readable, e.g. "campaign=c1 & placement=top"
    contribution: float


class BidAdjustment(msgspec.Struct, kw_only=True, gc=False):
    """Topic `bid-adjustments`, keyed by user_id (campaign_id for campaign-wide pacing).

    Why a per-user multiplier is what it is: `p_click`, `p_conversion` and
    `expected_revenue` (the value), `pacing_factor` (the budget), `top_features` (the
    three largest feature contributions behind the probabilities) and `gated` (models
    the health gate kept out of the value: their base rate was used instead; with the
    click model gated the multiplier is the pacing factor alone, reason
    `model_gated`)."""

    TOPIC: ClassVar[str] = "bid-adjustments"

    event_id: str
    ts: int
    user_id: str | None
    campaign_id: str
    multiplier: NonNegative
    p_click: Probability | None
    p_conversion: Probability | None
    expected_revenue: NonNegative | None
    expected_roas: NonNegative | None
    pacing_factor: NonNegative
    reason: str
    top_features: list[FeatureContribution] = msgspec.field(default_factory=list)
    gated: list[str] = msgspec.field(default_factory=list)
    ttl_s: int
    model_version: str
    source_event_id: str
    # Informational since pacing became campaign-wide (issue 9): the partition that
    # sent this adjustment, and the partition count. Every partition announces the same
    # campaign-wide pacing factor; a bidder applies the newest one, whatever its shard.
    shard: int
    shards: int
    schema_version: int = BID_SCHEMA_VERSION
    key_id: str | None = None  # as in Recommendation

    def routing_key(self) -> bytes:
        return (self.user_id or self.campaign_id).encode()


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
    # "original" (the bytes as received), "redacted" (personal ids pseudonymised and
    # personal fields removed) or "withheld" (no payload kept): issue 21.
    payload_privacy: str = "original"
    # The pseudonym key of `key` and of the ids in a redacted payload (None: none).
    key_id: str | None = None


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
