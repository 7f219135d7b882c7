"""Loads a partition's newest complete model snapshot from the snapshots topic."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from online_models.engine import PartitionEngine
from online_models.snapshot import SnapshotError, decode_snapshot
from streams.clock import now_ms
from streams.end_offsets import fetch_end_offsets
from streams.metrics import Metrics
from streams.settings import Settings
from streams.snapshots import SnapshotReadError, read_latest

log = logging.getLogger(__name__)


class SnapshotRestore:
    def __init__(
        self, settings: Settings, metrics: Metrics, consumer_kwargs: Mapping[str, Any]
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.consumer_kwargs = consumer_kwargs

    async def load(self, partition: int, engine: PartitionEngine) -> dict[str, Any] | None:
        """Load the newest complete snapshot of `partition` into `engine` (its shared
        knowledge is left to the caller) and return its state; None when it stays
        cold (logged): none written yet, unusable, or the partition unreadable."""
        topic = self.settings.topic_snapshots
        tp = TopicPartition(topic, partition)
        age = self.metrics.snapshot_age.labels(str(partition))
        try:
            ends = await fetch_end_offsets(self.consumer_kwargs, [tp])
            found = await read_latest(self.consumer_kwargs, topic, partition, ends[tp])
        except (SnapshotReadError, TimeoutError, KafkaError) as exc:
            # Never an older snapshot instead: cold is visible (error, NaN age), a stale
            # model restored silently is not.
            log.error("partition %d: snapshots unreadable, models start cold: %s", partition, exc)
            self.metrics.snapshot_restore_errors.inc()
            age.set(math.nan)
            return None
        if found is None:
            log.info("partition %d: no snapshot yet, models start cold", partition)
            age.set(math.nan)
            return None
        try:
            state = decode_snapshot(found.blob)
            engine.restore_user_side(state)
        except (SnapshotError, KeyError, ValueError, TypeError) as exc:
            log.error("partition %d: snapshot %s unusable, starting cold: %s",
                      partition, found.snapshot_id, exc)  # fmt: skip
            self.metrics.snapshot_restore_errors.inc()
            age.set(math.nan)
            return None
        seconds = found.age_s(now_ms())
        age.set(seconds)
        log.info(
            "partition %d: models restored from snapshot %s at offset %d (%d events), "
            "written %.0f s ago, event time %s",
            partition, found.snapshot_id, found.offset, engine.events, seconds,
            "unknown" if found.event_ts is None else _iso(found.event_ts),
        )  # fmt: skip
        return state


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")
