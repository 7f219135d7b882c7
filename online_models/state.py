"""Per-user state kept in the worker's table: the profile plus what makes updates
idempotent (last applied offset per source topic) and what bounds output volume."""

from __future__ import annotations

import bisect

import msgspec

from online_models.profile import Profile


class UserState(msgspec.Struct, kw_only=True, repr_omit_defaults=True):
    profile: Profile
    # Source topic -> offsets applied to this state that the consumer group has not
    # committed yet (sorted). A redelivered record is a duplicate when its offset is
    # listed or below the partition's committed offset (`floor`). Exact, unlike a
    # single "last applied offset" or a bounded window of recent offsets: a consumer
    # can hand over newer records before re-reading older ones it skipped, and an
    # older record that was never applied must then be applied, however many newer
    # ones were.
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


# A memory bound for a partition whose commits stall for a very long time; offsets
# are dropped only then, oldest first.
APPLIED_MAX = 4096


def already_applied(state: UserState, source: str, offset: int, floor: int = 0) -> bool:
    """True when the record at `offset` of `source` is already in this state. `floor`
    is the partition's committed offset: records below it were applied (and their
    state written) before the group committed past them.

    >>> s = UserState.new("u")
    >>> record_applied(s, "clickstream", 9); record_applied(s, "clickstream", 5)
    >>> [already_applied(s, "clickstream", o) for o in (3, 5, 7, 9, 10)]
    [False, True, False, True, False]
    >>> already_applied(s, "clickstream", 3, floor=4)
    True
    """
    if offset < floor:
        return True
    seen = state.applied.get(source)
    if not seen:
        return False
    i = bisect.bisect_left(seen, offset)
    return i < len(seen) and seen[i] == offset


def record_applied(state: UserState, source: str, offset: int, floor: int = 0) -> None:
    """List `offset`, forgetting offsets below the committed `floor`.

    >>> s = UserState.new("u")
    >>> for o in (3, 8, 5):
    ...     record_applied(s, "orders", o)
    >>> record_applied(s, "orders", 9, floor=6); s.applied
    {'orders': [8, 9]}
    """
    seen = state.applied.setdefault(source, [])
    if seen and seen[0] < floor:
        del seen[: bisect.bisect_left(seen, floor)]
    bisect.insort(seen, offset)
    if len(seen) > APPLIED_MAX:
        del seen[0]


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(UserState)


def encode_state(state: UserState) -> bytes:
    return _ENCODER.encode(state)


def decode_state(raw: bytes) -> UserState:
    return _DECODER.decode(raw)
