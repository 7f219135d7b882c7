"""Create every topic the service uses, with the configured partition count.

Inputs, the user table's changelog and the snapshot topic must share one partition
count: a user's records, state and partition engine all live on the same number."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.settings import Settings

log = logging.getLogger(__name__)


def topic_specs(s: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    compact = {"cleanup.policy": "compact"}
    return {
        s.topic_clickstream: (s.partitions, {}),
        s.topic_orders: (s.partitions, {}),
        s.topic_impressions: (s.partitions, {}),
        s.topic_campaigns: (1, compact),
        s.topic_recommendations: (s.partitions, {}),
        s.topic_bid_adjustments: (s.partitions, {}),
        s.topic_dead_letter: (s.partitions, {}),
        s.topic_snapshots: (s.partitions, {"retention.ms": str(3 * 86_400_000)}),
        # Erasure (issue 21): requests keyed by user like the inputs; confirmations
        # are the audit trail the operator keeps.
        s.topic_erasure_requests: (s.partitions, {}),
        s.topic_erasure_confirmations: (s.partitions, {}),
        f"{s.app_id}-users-changelog": (s.partitions, compact),
    }


async def create_topics(s: Settings, client_kwargs: dict[str, Any]) -> list[str]:
    admin = AIOKafkaAdminClient(**client_kwargs)
    await admin.start()
    created = []
    try:
        existing = set(await admin.list_topics())
        for name, (partitions, config) in topic_specs(s).items():
            if name in existing:
                continue
            try:
                await admin.create_topics(
                    [NewTopic(name, partitions, s.replication_factor, topic_configs=config)]
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        for _ in range(50):  # wait until metadata shows them, so workers never auto-create
            if set(topic_specs(s)) <= set(await admin.list_topics()):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    log.info("topics created: %s", created)
    return created
