"""Model snapshots on a Kafka topic: one partition per input partition, split into
chunks below the broker's message size, restored from the latest complete one."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from online_models.snapshot import encode_snapshot

CHUNK_BYTES = 512 * 1024


def chunk_snapshot(
    state: dict[str, Any], snapshot_id: str
) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    blob = encode_snapshot(state)
    parts = [blob[i : i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)] or [b""]
    return [
        (
            part,
            [
                ("snapshot_id", snapshot_id.encode()),
                ("chunk", str(i).encode()),
                ("chunks", str(len(parts)).encode()),
            ],
        )
        for i, part in enumerate(parts)
    ]


async def read_latest(
    consumer_kwargs: Mapping[str, Any],
    topic: str,
    partition: int,
    end_offset: int,
    timeout_s: float = 30.0,
) -> bytes | None:
    """The newest complete snapshot blob in `topic`/`partition`, or None."""
    if end_offset <= 0:
        return None
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False,
        group_id=None,
        fetch_max_bytes=8 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **consumer_kwargs,
    )
    await consumer.start()
    tp = TopicPartition(topic, partition)
    latest: bytes | None = None
    pending: dict[str, dict[int, bytes]] = {}
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        position = 0
        while position < end_offset and loop.time() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=500)
            for msg in batch.get(tp, []):
                position = msg.offset + 1
                h = {k: v.decode() for k, v in msg.headers}
                sid, chunk, chunks = h["snapshot_id"], int(h["chunk"]), int(h["chunks"])
                parts = pending.setdefault(sid, {})
                parts[chunk] = msg.value or b""
                if len(parts) == chunks:
                    latest = b"".join(parts[i] for i in range(chunks))
                    pending.clear()
    finally:
        await consumer.stop()
    return latest
