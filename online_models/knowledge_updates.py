"""The updates the user side hands to the shared knowledge (online_models/knowledge.py):
compact msgspec structs, each with its own event time, that travel between processes
as tagged JSON arrays (`encode_updates` / `decode_updates`, a version number in front,
never pickle).

>>> decode_updates(encode_updates([Spend("c1", 7_000, 0.25)]))
[Spend(campaign_id='c1', ts=7000, cost=0.25)]
"""

from __future__ import annotations

import msgspec

UPDATES_VERSION = 2


class ItemSeen(msgspec.Struct, array_like=True, frozen=True, tag="item", gc=False):
    """A user interacted with an item (popularity / trending, item -> category)."""

    item: str
    category: str | None
    ts: int
    weight: float


class Transition(msgspec.Struct, array_like=True, frozen=True, tag="next", gc=False):
    """In one session a user went from `prev` to `item`, `distance` steps later (1 =
    directly; `prev == item` for a repeat). Feeds the sequential rules and, for
    distinct items, symmetric co-visitation."""

    prev: str
    item: str
    ts: int
    distance: int


class SessionClick(msgspec.Struct, array_like=True, frozen=True, tag="sess", gc=False):
    """Session `session` (a key: the input's session id, else user id and session
    number) touched `item`: feeds the session index of session-based kNN."""

    session: str
    item: str
    ts: int


class Revisit(msgspec.Struct, array_like=True, frozen=True, tag="revisit", gc=False):
    """A next item was the `distance`-th latest distinct item of its session (1 = the
    one just viewed), or new to the session (0): the revisit rates."""

    distance: int
    ts: int


class Example(msgspec.Struct, array_like=True, frozen=True, tag="label", gc=False):
    """A labelled example for the click or conversion (and revenue) model; `ts` is the
    event time at which the user side resolved it (the watermark passed its window).

    Kind "clicked" announces a conversion window opened by a click (learned at once as
    a fake negative, see `online_models.learner`); a "conversion" label carries `p`,
    the conversion prediction made when its click happened, and `base`, the running
    conversion base rate then (-1: unknown)."""

    kind: str  # "click" | "clicked" | "conversion"
    y: bool
    x: dict[str, float]
    campaign_id: str
    ts: int
    revenue: float = 0.0
    p: float = -1.0
    base: float = -1.0


class Spend(msgspec.Struct, array_like=True, frozen=True, tag="spend", gc=False):
    """An impression's cost, towards its campaign's daily spend and mean cost."""

    campaign_id: str
    ts: int
    cost: float


class BidValue(msgspec.Struct, array_like=True, frozen=True, tag="value", gc=False):
    """A predicted impression value, towards the campaign's running average."""

    campaign_id: str
    ts: int
    value: float


class BuyerRfm(msgspec.Struct, array_like=True, frozen=True, tag="rfm", gc=False):
    """A buyer's recency / frequency / monetary point, for the segment model."""

    r: float
    f: float
    m: float
    ts: int


class SegmentMove(msgspec.Struct, array_like=True, frozen=True, tag="segmove", gc=False):
    """A user's segment label changed (k-anonymity counts, segment_counts.py)."""

    old: str | None
    new: str | None
    ts: int


Update = (
    ItemSeen
    | Transition
    | SessionClick
    | Revisit
    | Example
    | Spend
    | BidValue
    | BuyerRfm
    | SegmentMove
)


class UpdateBatch(msgspec.Struct, frozen=True):
    v: int
    updates: list[Update]


_ENCODER = msgspec.json.Encoder()
_BATCH = msgspec.json.Decoder(UpdateBatch)


def encode_updates(updates: list[Update]) -> bytes:
    """JSON bytes of a batch of updates, with the format version in front."""
    return _ENCODER.encode(UpdateBatch(UPDATES_VERSION, updates))


def decode_updates(raw: bytes) -> list[Update]:
    batch = _BATCH.decode(raw)
    if batch.v != UPDATES_VERSION:
        raise ValueError(f"knowledge updates version {batch.v}, expected {UPDATES_VERSION}")
    return batch.updates
