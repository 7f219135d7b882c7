"""Per-user state kept in the worker's table: the profile plus what makes updates
idempotent (last applied offset per source topic) and what bounds output volume."""

from __future__ import annotations

import msgspec

from online_models.profile import Profile


class UserState(msgspec.Struct, kw_only=True, repr_omit_defaults=True):
    profile: Profile
    # Source topic -> last applied offset. A redelivered record at or below it was
    # already folded into this state (and its outputs sent) before a crash.
    applied: dict[str, int] = msgspec.field(default_factory=dict)
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


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(UserState)


def encode_state(state: UserState) -> bytes:
    return _ENCODER.encode(state)


def decode_state(raw: bytes) -> UserState:
    return _DECODER.decode(raw)
