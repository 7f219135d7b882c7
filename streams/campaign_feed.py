"""Every worker follows the whole `campaigns` topic (all partitions, no consumer
group), so each partition engine sees every campaign's settings."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from online_models.decode import CAMPAIGNS
from online_models.pipeline import InputRecord

log = logging.getLogger(__name__)


async def follow_campaigns(
    client_kwargs: dict[str, Any], settings: Any, runtime: Any, app: Any
) -> None:
    topic = settings.topic_campaigns
    consumer = AIOKafkaConsumer(enable_auto_commit=False, group_id=None, **client_kwargs)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        while not parts:
            await asyncio.sleep(1.0)
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            for msgs in batch.values():
                for msg in msgs:
                    await _apply(msg, runtime, settings, app)
    finally:
        await consumer.stop()


async def _apply(msg: Any, runtime: Any, settings: Any, app: Any) -> None:
    """A campaign record through the same pipeline step as the replay's (settings,
    tombstones, refusals as dead letters)."""
    step = runtime.pipeline.step(
        InputRecord(msg.topic, CAMPAIGNS, msg.partition, msg.offset, msg.key, msg.value)
    )
    for e in step.emissions:
        await runtime.topics[e.topic].send(key=e.key, value=e.value, headers=e.headers)
    if step.reason is not None:
        runtime.metrics.dead_letters.labels(msg.topic, step.reason).inc()
