"""Make sure the consumer group has a committed offset on every input partition.

Works around faust-streaming 0.15.3's `Consumer.perform_seek` (after table recovery it
seeks each stream partition back to its committed offset; with none committed it does
not seek, and records it fetched early and then dropped with its queues are silently
skipped: seen here after a worker died before its first commit; upstream
faust-streaming/faust#216 is the same gap without tables). Committing offset 0 where
nothing is committed yet closes that hole. Public aiokafka API only: it needs no check
beyond the version pin. `committed_offsets` gives the commit guard its starting points."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


def _group_consumer(client_kwargs: Mapping[str, Any], group_id: str) -> AIOKafkaConsumer:
    """A consumer of the group's offsets that never joins the group (manual assignment)."""
    return AIOKafkaConsumer(group_id=group_id, enable_auto_commit=False, **client_kwargs)


async def ensure_committed(
    client_kwargs: Mapping[str, Any], group_id: str, topics: Iterable[str], partitions: int
) -> dict[TopicPartition, int]:
    consumer = _group_consumer(client_kwargs, group_id)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        consumer.assign(tps)
        missing = {tp: 0 for tp in tps if await consumer.committed(tp) is None}
        if missing:
            await consumer.commit(missing)
            log.info("initial offsets committed for %d partitions", len(missing))
        return missing
    except KafkaError as exc:  # the group is active: its members own the offsets
        log.info("offsets not initialised (%s): group already active", exc)
        return {}
    finally:
        await consumer.stop()


async def committed_offsets(
    client_kwargs: Mapping[str, Any], group_id: str, tps: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """The group's committed offsets (0 where none), read without joining the group."""
    consumer = _group_consumer(client_kwargs, group_id)
    await consumer.start()
    try:
        wanted = [TopicPartition(t, p) for t, p in tps]
        consumer.assign(wanted)
        return {(tp.topic, tp.partition): (await consumer.committed(tp)) or 0 for tp in wanted}
    finally:
        await consumer.stop()
