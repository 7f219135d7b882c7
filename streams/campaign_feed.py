"""Every worker follows the whole `campaigns` topic (all partitions, no consumer
group), so each partition engine sees every campaign's settings."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer

from online_models.decode import CAMPAIGNS, DecodeError, decode_input
from streams.codec import dead_letter

log = logging.getLogger(__name__)


async def follow_campaigns(
    client_kwargs: dict[str, Any], settings: Any, runtime: Any, app: Any
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
                    await _apply(msg, runtime, settings, app)
    finally:
        await consumer.stop()


async def _apply(msg: Any, runtime: Any, settings: Any, app: Any) -> None:
    if msg.value is None:  # tombstone: campaign deleted, defaults apply again
        runtime.knowledge.remove_campaign((msg.key or b"").decode(errors="replace"))
        return
    try:
        campaign = decode_input(CAMPAIGNS, msg.value, settings.max_message_bytes)
    except DecodeError as exc:
        await _dead_letter(msg, runtime, exc.reason, f"DecodeError: {exc.detail}")
        return
    if not runtime.knowledge.set_campaign(campaign):
        await _dead_letter(
            msg, runtime, "too_many_campaigns", "max_campaigns campaigns are known already"
        )


async def _dead_letter(msg: Any, runtime: Any, reason: str, error: str) -> None:
    value, headers = dead_letter(
        msg.topic, msg.partition, msg.offset, msg.key, msg.value, reason, error
    )
    await runtime.topics["dead-letter"].send(key=msg.key, value=value, headers=headers)
    runtime.metrics.dead_letters.labels(msg.topic, reason).inc()
