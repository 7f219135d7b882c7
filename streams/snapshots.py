"""Model snapshots on a Kafka topic: one partition per input partition, split into
chunks below the broker's message size, restored from the newest complete one.

Each chunk carries the headers `snapshot_id`, `chunk` (index) and `chunks` (count), and
since this version `event_ts` (the engine's latest event time, ms) and `written_ms`
(wall time it was written, ms); snapshots written before them still load, their age is
then taken from the record timestamp.

Restore reads the partition backwards from its end, in windows that double: read
[end - N, end) to the end, keep the complete snapshot that finished last; when the
window holds none, read from further back. It never settles for an older snapshot
because time ran out: a partition that cannot be read to its end raises
`SnapshotReadError`, which the caller handles.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from online_models.snapshot import encode_snapshot

log = logging.getLogger(__name__)
CHUNK_BYTES = 512 * 1024
FIRST_WINDOW = 32  # records read back from the end first; doubled until one is complete

Headers = Sequence[tuple[str, bytes | None]]
# (offset, headers, value, record timestamp ms) of one record of the snapshot partition
Chunk = tuple[int, Headers, bytes | None, int]


class SnapshotReadError(RuntimeError):
    """The snapshot partition could not be read up to its end."""


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    blob: bytes
    offset: int  # offset of its last chunk: its position in the log
    event_ts: int | None  # engine's latest event time (ms), None for older snapshots
    written_ms: int  # wall time written (ms): the header, else the record timestamp

    def age_s(self, now_ms: int) -> float:
        """Seconds between writing and `now_ms` (never negative)."""
        return max(0.0, (now_ms - self.written_ms) / 1000)


def chunk_snapshot(
    state: dict[str, Any], snapshot_id: str, event_ts: int, written_ms: int
) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    """The records of one snapshot: (value, headers) per chunk, in order.

    >>> [h for _, h in chunk_snapshot({"a": 1}, "p0-e5", 1000, 2000)][0][1:3]
    [('chunk', b'0'), ('chunks', b'1')]
    """
    blob = encode_snapshot(state)
    parts = [blob[i : i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)] or [b""]
    return [
        (
            part,
            [
                ("snapshot_id", snapshot_id.encode()),
                ("chunk", str(i).encode()),
                ("chunks", str(len(parts)).encode()),
                ("event_ts", str(event_ts).encode()),
                ("written_ms", str(written_ms).encode()),
            ],
        )
        for i, part in enumerate(parts)
    ]


def newest_complete(records: Iterable[Chunk]) -> Snapshot | None:
    """The complete snapshot whose last chunk comes last in `records` (offset order).

    A snapshot is complete when chunks 0..chunks-1 of one id follow each other; a chunk
    0 starts it over (an id written twice, or a writer that died mid-way and wrote it
    again), and records without valid snapshot headers are ignored.

    >>> def rec(offset, sid, i, n):
    ...     return (offset, [("snapshot_id", sid), ("chunk", b"%d" % i), ("chunks", b"%d" % n)],
    ...             b"%s:%d;" % (sid, i), 5000)
    >>> older = [rec(0, b"a", 0, 2), rec(1, b"a", 1, 2)]
    >>> newest_complete(older + [rec(2, b"b", 0, 2)]).snapshot_id  # b is incomplete
    'a'
    >>> newest_complete(older + [rec(2, b"b", 0, 1)]).blob
    b'b:0;'
    >>> newest_complete([rec(5, b"c", 1, 2)]) is None  # its chunk 0 is before the window
    True
    """
    found: Snapshot | None = None
    building: dict[str, tuple[int, list[bytes], Chunk]] = {}  # sid -> (chunks, parts, first)
    for record in records:
        offset, headers, value, _ = record
        meta = _headers(headers)
        try:
            sid, index, count = meta["snapshot_id"], int(meta["chunk"]), int(meta["chunks"])
        except (KeyError, ValueError):
            continue
        if index == 0:
            building[sid] = (count, [], record)
        current = building.get(sid)
        if current is None or current[0] != count or len(current[1]) != index:
            building.pop(sid, None)  # out of order: wait for this id's next chunk 0
            continue
        current[1].append(value or b"")
        if len(current[1]) == count:
            del building[sid]
            found = _snapshot(sid, b"".join(current[1]), offset, current[2])
    return found


def _headers(headers: Headers) -> dict[str, str]:
    out = {}
    for key, value in headers:
        try:
            out[key] = (value or b"").decode()
        except UnicodeDecodeError:
            continue
    return out


def _snapshot(sid: str, blob: bytes, last_offset: int, first: Chunk) -> Snapshot:
    meta = _headers(first[1])
    event_ts = _int(meta.get("event_ts"))
    written = _int(meta.get("written_ms"))
    return Snapshot(sid, blob, last_offset, event_ts, first[3] if written is None else written)


def _int(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


async def read_latest(
    consumer_kwargs: Mapping[str, Any],
    topic: str,
    partition: int,
    end_offset: int,
    timeout_s: float = 30.0,
) -> Snapshot | None:
    """The newest complete snapshot in `topic`/`partition` below `end_offset` (its
    log end, see streams/end_offsets.py), or None when the partition holds none.

    Raises SnapshotReadError when the records up to `end_offset` cannot be read within
    `timeout_s`."""
    if end_offset <= 0:
        return None
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False,
        group_id=None,
        fetch_max_bytes=8 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        # A window reaching below the log start (retention) reads from the log start.
        auto_offset_reset="earliest",
        **consumer_kwargs,
    )
    await consumer.start()
    tp = TopicPartition(topic, partition)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        consumer.assign([tp])
        first = (await consumer.beginning_offsets([tp]))[tp] or 0
        window = FIRST_WINDOW
        while True:
            start = max(first, end_offset - window)
            records = await _read_range(consumer, tp, start, end_offset, deadline)
            found = newest_complete(records)
            if found is not None or start <= first:
                return found
            window *= 2
    finally:
        await consumer.stop()


async def _read_range(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int, deadline: float
) -> list[Chunk]:
    """Every record of [start, end), in offset order; SnapshotReadError past `deadline`."""
    consumer.seek(tp, start)
    loop = asyncio.get_running_loop()
    out: list[Chunk] = []
    position = start
    while position < end:
        left = deadline - loop.time()
        if left <= 0:
            raise SnapshotReadError(
                f"{tp.topic}[{tp.partition}]: only read up to offset {position} of {end} in time"
            )
        batch = await consumer.getmany(tp, timeout_ms=int(min(left, 0.5) * 1000))
        for msg in batch.get(tp, []):
            if msg.offset >= end:
                break
            out.append((msg.offset, list(msg.headers or ()), msg.value, msg.timestamp))
        # The position also moves past offsets that hold no record (control batches).
        position = max(position, await consumer.position(tp))
    return out
