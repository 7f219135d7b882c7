"""When and how a partition's engine state is written to the snapshots topic."""

from __future__ import annotations

import time
from collections.abc import Mapping

from online_models.engine import PartitionEngine
from streams.clock import now_ms
from streams.metrics import Metrics
from streams.output_sender import OutputSender
from streams.settings import Settings
from streams.snapshots import chunk_snapshot


class SnapshotWriter:
    def __init__(self, settings: Settings, metrics: Metrics, sender: OutputSender) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sender = sender
        self.since_snapshot: dict[int, int] = {}  # events applied since the last one
        self.last_snapshot_at: dict[int, float] = {}  # monotonic time it ended
        self.snapshot_cost: dict[int, float] = {}  # seconds the last snapshot took

    def start(self, partition: int) -> None:
        """A partition just restored: nothing unsaved, its schedule starts now."""
        self.since_snapshot[partition] = 0
        self.last_snapshot_at[partition] = time.monotonic()

    async def after_event(self, partition: int, engine: PartitionEngine) -> None:
        self.since_snapshot[partition] += 1
        elapsed = time.monotonic() - self.last_snapshot_at[partition]
        due = (
            self.since_snapshot[partition] >= self.settings.snapshot_every_events
            or elapsed >= self.settings.snapshot_every_s
        )
        if due and elapsed >= self.gap(partition):
            await self.write(partition, engine)

    async def idle(self, engines: Mapping[int, PartitionEngine]) -> None:
        """Snapshot partitions with unsaved events once input pauses (timer-driven)."""
        for p, engine in list(engines.items()):
            stale = time.monotonic() - self.last_snapshot_at[p] >= self.settings.snapshot_every_s
            if self.since_snapshot.get(p) and stale:
                await self.write(p, engine)

    def gap(self, partition: int) -> float:
        """Seconds to wait after a snapshot so that snapshots take at most
        `snapshot_max_share` of the worker's time: their cost grows with the state."""
        share = self.settings.snapshot_max_share
        return self.snapshot_cost.get(partition, 0.0) * (1.0 - share) / share

    async def write(self, partition: int, engine: PartitionEngine) -> None:
        started = time.monotonic()
        written = now_ms()
        sid = f"p{partition}-e{engine.events}-t{written}"
        chunks = chunk_snapshot(engine.to_state(), sid, engine.attribution.max_ts, written)
        for value, headers in chunks:
            await self.sender.send_snapshot(partition, value, headers)
        self.since_snapshot[partition] = 0
        self.last_snapshot_at[partition] = done = time.monotonic()
        self.snapshot_cost[partition] = done - started
        self.metrics.snapshots.inc()
        self.metrics.snapshot_seconds.observe(done - started)
