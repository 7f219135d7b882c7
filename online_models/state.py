"""Per-user state kept in the worker's table: the profile plus what makes updates
idempotent (last applied offset per source topic) and what bounds output volume."""

from __future__ import annotations

import bisect

import msgspec

from online_models.profile import Profile


class UserState(msgspec.Struct, kw_only=True, repr_omit_defaults=True):
    profile: Profile
    # Source topic -> the latest offsets applied to this state (sorted, at most
    # APPLIED_KEPT). A redelivered record is a duplicate when its offset is listed, or
    # older than every listed one once the list is full. Unlike a single "last applied
    # offset", this stays exact when a consumer redelivers records out of order (Faust
    # can hand over a record before seeking back to the committed offset).
    applied: dict[str, list[int]] = msgspec.field(default_factory=dict)
    # Event times of the latest recommendations (sorted, bounded): an event is
    # rate-limited only by recommendations at or before its own time, so a topic read
    # ahead of the others cannot suppress the earlier events that arrive after it.
    rec_times: list[int] = msgspec.field(default_factory=list)
    bids: dict[str, float] = msgspec.field(default_factory=dict)
    # Campaign -> [last impression ts, placement, device, region]
    campaigns: dict[str, list[str | int]] = msgspec.field(default_factory=dict)

    @classmethod
    def new(cls, user_id: str) -> UserState:
        return cls(profile=Profile(user_id=user_id))


APPLIED_KEPT = 256  # must cover one user's records within a read-back span


def already_applied(state: UserState, source: str, offset: int) -> bool:
    """True when the record at `offset` of `source` is already in this state.

    >>> s = UserState.new("u")
    >>> record_applied(s, "clickstream", 5); record_applied(s, "clickstream", 9)
    >>> [already_applied(s, "clickstream", o) for o in (5, 7, 9, 10)]
    [True, False, True, False]
    """
    seen = state.applied.get(source)
    if not seen:
        return False
    return offset in seen or (len(seen) >= APPLIED_KEPT and offset < seen[0])


def record_applied(state: UserState, source: str, offset: int) -> None:
    seen = state.applied.setdefault(source, [])
    bisect.insort(seen, offset)
    if len(seen) > APPLIED_KEPT:
        del seen[0]


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(UserState)


def encode_state(state: UserState) -> bytes:
    return _ENCODER.encode(state)


def decode_state(raw: bytes) -> UserState:
    return _DECODER.decode(raw)


def read_state(raw: bytes) -> UserState | None:
    """A stored state, or None when it does not decode (written by a version with a
    bug, say a NaN saved as null): that user starts afresh, and the caller counts it;
    the partition goes on. Before this, one such state dead-lettered every later
    event of its user.

    >>> read_state(encode_state(UserState.new("u"))).profile.user_id, read_state(b"{")
    ('u', None)
    """
    try:
        return _DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
