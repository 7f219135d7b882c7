"""Erasure of one user (GDPR Art. 17, CCPA) from every copy the domain keeps (issue 21).

An `erasure-requests` record names a user (raw or already pseudonymous); it is routed
like the user's events, so it reaches the partition that holds the user and runs in
order with their events. There it removes:

- the profile: the state is deleted, which writes a tombstone to the changelog;
- the user's TTL entry and pending attributions (impressions, clicks and orders of
  the user waiting for a label);
- the user's sessions in the session index (keyed by their session ids, or by
  pseudonym and session number), also from the knowledge updates not yet applied.

Kept on purpose, because nothing in them is attributable to a user: co-visitation
counts, sequential rules, popularity and the models' weights are sums over all users
keyed by items and features, with no record of who contributed (they decay; see
docs/operations.md "Personal data"). The next snapshot of the partition is written
from the erased engine, so it holds no trace; older snapshots expire with the
snapshot topic's retention (3 days).

It answers with an `ErasureConfirmation` listing what was removed.

>>> req = decode_request(b'{"request_id":"r1","user_id":"u1","ts":1700000000}')
>>> req.user_id, req.ts
('u1', 1700000000000)
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any, ClassVar, Final

import msgspec

from online_models.decode import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    DecodeError,
    nesting_depth,
    parse_object,
)
from online_models.events import normalize
from online_models.knowledge_updates import SessionClick
from online_models.outputs import stable_id
from online_models.state import UserState
from online_models.timeparse import TimestampError

if TYPE_CHECKING:
    from online_models.engine import PartitionEngine

ERASURE: Final = "erasure-requests"  # the logical input stream
# What is kept, and why: part of every confirmation (an auditor reads it there).
KEPT: Final = (
    "co-visitation, sequential rules, popularity and model weights: sums over all "
    "users keyed by items and features, no per-user contribution recorded"
)


class ErasureRequest(msgspec.Struct, kw_only=True, gc=False):
    """Topic `erasure-requests`, keyed by the user id like the events."""

    request_id: str
    user_id: str
    ts: int

    def __post_init__(self) -> None:
        if not self.request_id or not self.user_id:
            raise ValueError("`request_id` and `user_id` must not be empty")

    @property
    def event_id(self) -> str:
        return self.request_id


class ErasureConfirmation(msgspec.Struct, kw_only=True, gc=False):
    """Topic `erasure-confirmations`, keyed by the (pseudonymous) user id: what one
    request removed, at which event time, on which partition."""

    TOPIC: ClassVar[str] = "erasure-confirmations"

    event_id: str
    request_id: str
    ts: int
    user_id: str
    partition: int
    removed: dict[str, int]
    kept: str
    snapshots: str
    key_id: str | None = None
    schema_version: int = 1

    def routing_key(self) -> bytes:
        return self.user_id.encode()


def decode_request(raw: bytes | None) -> ErasureRequest:
    """An erasure request's bytes; DecodeError with the decoder's reasons."""
    if not raw:
        raise DecodeError("empty_value", "the record has no value (tombstone or empty)")
    if len(raw) > DEFAULT_MAX_BYTES or nesting_depth(raw) > DEFAULT_MAX_DEPTH:
        raise DecodeError("oversized", "an erasure request is a small flat object")
    try:
        return msgspec.convert(normalize(parse_object(raw)), ErasureRequest)
    except TimestampError as exc:
        raise DecodeError("bad_timestamp", str(exc)) from None
    except msgspec.ValidationError as exc:
        raise DecodeError("invalid_value", str(exc)) from None


def erase(
    engine: PartitionEngine, user: str, state: UserState | None, req: ErasureRequest
) -> ErasureConfirmation:
    """Remove `user` from `engine` (its partition's user side and the knowledge it
    feeds); the caller deletes the state itself. Idempotent: a redelivered request
    finds nothing left and says so."""
    removed = {"profile": int(state is not None)}
    removed["ttl_entry"] = int(engine.activity.pop(user, None) is not None)
    removed.update(_forget_attribution(engine.attribution, user))
    removed["sessions"] = _forget_sessions(engine, user, state)
    if state is not None:  # out of its segment's population (k-anonymity counts)
        engine.knowledge.segment_counts.move(state.profile.segment, None)
    return ErasureConfirmation(
        event_id=stable_id("erasure", req.request_id, user),
        request_id=req.request_id,
        ts=req.ts,
        user_id=user,
        partition=engine.partition,
        removed=removed,
        kept=KEPT,
        snapshots="from the partition's next snapshot on; older ones expire with the "
        "snapshot topic's retention",
    )


def _forget_attribution(att: Any, user: str) -> dict[str, int]:
    gone = [i for i, p in att.impressions.items() if p.user_id == user]
    for impression_id in gone:
        del att.impressions[impression_id]
    clicks = att.clicks.pop(user, [])
    orders = att.orders.pop(user, [])
    keys = {user, *gone}
    before = len(att.deadlines)
    att.deadlines = [d for d in att.deadlines if d[4] not in keys]
    if len(att.deadlines) != before:
        heapq.heapify(att.deadlines)
    return {
        "pending_impressions": len(gone),
        "pending_clicks": len(clicks),
        "pending_orders": len(orders),
    }


def _forget_sessions(engine: PartitionEngine, user: str, state: UserState | None) -> int:
    """The user's sessions in the session index and in updates still pending."""
    knowledge = engine.knowledge
    index = knowledge.recs.index
    mine = {str(s[0]) for s in state.profile.recent_sessions} if state is not None else set()
    prefix = f"{user}#"
    mine.update(k for k in index.sessions if k.startswith(prefix))
    found = 0
    for key in mine:
        if index.sessions.pop(key, None) is not None:
            found += 1
    if mine:
        for item, keys in list(index.by_item.items()):
            kept = [k for k in keys if k not in mine]
            if len(kept) != len(keys):
                if kept:
                    index.by_item[item] = kept
                else:
                    del index.by_item[item]
        pending = [
            p
            for p in knowledge.pending
            if not (isinstance(p[2], SessionClick) and p[2].session in mine)
        ]
        if len(pending) != len(knowledge.pending):
            heapq.heapify(pending)
            knowledge.pending = pending
    return found
