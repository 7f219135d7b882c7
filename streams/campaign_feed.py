"""Every worker follows the whole `campaigns` topic (all partitions, no consumer
group), so each partition engine sees every campaign's settings."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from online_models.decode import CAMPAIGNS
from online_models.pipeline import InputRecord
from streams.runtime import Runtime
from streams.settings import Settings

log = logging.getLogger(__name__)


async def follow_campaigns(
    client_kwargs: dict[str, Any], settings: Settings, runtime: Runtime
) -> None:
    topic = settings.topic_campaigns
    # No group: subscribing assigns every partition of the topic (and ones added
    # later), read from the beginning since nothing is ever committed.
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False, group_id=None, auto_offset_reset="earliest", **client_kwargs
    )
    await consumer.start()
    try:
        while topic not in await consumer.topics():  # asks the cluster each time
            await asyncio.sleep(1.0)
        consumer.subscribe([topic])
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            for msgs in batch.values():
                for msg in msgs:
                    await _apply(msg, runtime)
    finally:
        await consumer.stop()


async def _apply(msg: ConsumerRecord[bytes, bytes], runtime: Runtime) -> None:
    """A campaign record through the same pipeline step as the replay's (settings,
    tombstones, refusals as dead letters)."""
    step = runtime.pipeline.step(
        InputRecord(msg.topic, CAMPAIGNS, msg.partition, msg.offset, msg.key, msg.value)
    )
    await runtime.sender.send_step(msg.topic, step)
    if step.reason is not None:
        runtime.metrics.dead_letters.labels(msg.topic, step.reason).inc()
