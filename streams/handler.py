"""One input record in, what to send and store out. Synchronous and Kafka-free, so
the agent loop stays a thin `await` over it and tests can drive it directly.

Errors are data: any record the domain refuses, and any exception raised while
decoding or processing one, becomes a dead-letter send; the record counts as
processed and the agent moves on to the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from online_models.decode import DEFAULT_MAX_DEPTH, DecodeError, decode_input
from online_models.engine import REFUSALS, PartitionEngine
from online_models.outputs import BidAdjustment, Output, encode_output
from online_models.partitioning import partition_for
from online_models.state import UserState
from streams.codec import dead_letter


@dataclass
class Send:
    topic: str  # logical: "recommendations" | "bid-adjustments" | "dead-letter" | "repartition"
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    partition: int | None = None


@dataclass
class Outcome:
    sends: list[Send] = field(default_factory=list)
    user: str | None = None
    state: UserState | None = None
    expired: list[str] = field(default_factory=list)
    event_type: str = ""
    event_ts: int = 0
    reason: str | None = None
    duplicate: bool = False
    outputs: list[Output] = field(default_factory=list)
    evict: str | None = None  # a user whose cached state must be dropped


@dataclass(frozen=True)
class Record:
    topic: str  # the configured topic name
    stream: str  # the logical stream it carries
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None  # None: a tombstone


def handle_record(
    rec: Record,
    engine: PartitionEngine,
    get_state: Callable[[str], UserState | None],
    partitions: int,
    max_bytes: int,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Outcome:
    """What to do with one record. Never raises: a record that cannot be decoded or
    processed becomes a dead letter, so no record can stop its partition."""
    try:
        ev = decode_input(rec.stream, rec.value, max_bytes, max_depth)
    except DecodeError as exc:
        return _refused(rec, exc.reason, f"DecodeError: {exc.detail}")
    except Exception as exc:  # a parser bug must not become a crash loop
        return _refused(rec, f"processing_error:{type(exc).__name__}", _describe(exc))
    try:
        return _apply(rec, ev, engine, get_state, partitions)
    except Exception as exc:
        # The engine may have changed the cached state before failing: the caller
        # drops it from the cache, and the table keeps the last state written.
        out = _refused(rec, f"processing_error:{type(exc).__name__}", _describe(exc))
        out.evict = getattr(ev, "user_id", None)
        return out


def _refused(rec: Record, reason: str, error: str) -> Outcome:
    value, headers = dead_letter(
        rec.topic, rec.partition, rec.offset, rec.key, rec.value, reason, error
    )
    return Outcome(sends=[Send("dead-letter", rec.key, value, headers)], reason=reason)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _apply(
    rec: Record,
    ev: Any,
    engine: PartitionEngine,
    get_state: Callable[[str], UserState | None],
    partitions: int,
) -> Outcome:
    user_key = ev.user_id.encode()
    home = partition_for(user_key, partitions)
    if rec.key != user_key or home != rec.partition:
        # Keyed differently by the producer: send it to where the user's state lives.
        return Outcome(
            sends=[Send("repartition", user_key, rec.value or b"", partition=home)],
            event_type="repartitioned",
        )
    result = engine.process(rec.stream, ev, get_state(ev.user_id), rec.offset)
    if result.refused is not None:
        why = REFUSALS.get(result.refused, result.refused)
        return _refused(rec, result.refused, f"{why} (event time {ev.ts})")
    event_type = getattr(ev, "type", None) or getattr(ev, "status", None) or "impression"
    if result.duplicate:
        return Outcome(user=ev.user_id, duplicate=True, event_type=event_type, event_ts=ev.ts)
    sends = [
        Send(
            "bid-adjustments" if isinstance(o, BidAdjustment) else "recommendations",
            (o.user_id or o.campaign_id).encode()
            if isinstance(o, BidAdjustment)
            else o.user_id.encode(),
            encode_output(o),
            [("event_id", o.event_id.encode())],
        )
        for o in result.outputs
    ]
    return Outcome(
        sends=sends,
        user=ev.user_id,
        state=result.state,
        expired=result.expired,
        event_type=event_type,
        event_ts=ev.ts,
        outputs=result.outputs,
    )
