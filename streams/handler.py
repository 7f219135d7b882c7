"""One input record in, what to send and store out. Synchronous and Kafka-free, so
the agent loop stays a thin `await` over it and tests can drive it directly.

Errors are data: any record the domain refuses becomes a dead-letter send, and the
agent moves on to the next record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from online_models.decode import DecodeError, decode_input
from online_models.engine import PartitionEngine
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


@dataclass(frozen=True)
class Record:
    topic: str  # the configured topic name
    stream: str  # the logical stream it carries
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def handle_record(
    rec: Record,
    engine: PartitionEngine,
    get_state: Callable[[str], UserState | None],
    partitions: int,
    max_bytes: int,
) -> Outcome:
    try:
        ev = decode_input(rec.stream, rec.value, max_bytes)
    except DecodeError as exc:
        value, headers = dead_letter(rec.topic, rec.partition, rec.offset, rec.key, rec.value, exc)
        return Outcome(sends=[Send("dead-letter", rec.key, value, headers)], reason=exc.reason)
    user_key = ev.user_id.encode()
    home = partition_for(user_key, partitions)
    if rec.key != user_key or home != rec.partition:
        # Keyed differently by the producer: send it to where the user's state lives.
        return Outcome(
            sends=[Send("repartition", user_key, rec.value, partition=home)],
            event_type="repartitioned",
        )
    result = engine.process(rec.stream, ev, get_state(ev.user_id), rec.offset)
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
