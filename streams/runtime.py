"""Per-worker runtime: one PartitionEngine per assigned partition and ONE shared
knowledge that every engine of this worker reads and feeds, restored from the latest
model snapshots, fed by the agent. Sends, snapshots, lag and metrics are each their own
collaborator, handed in built (streams/runtime_factory.py wires them).

Each partition's snapshot carries the worker's knowledge as of that moment. A worker
whose knowledge is still empty when it restores partitions (a fresh or restarted
process) loads the newest knowledge among their snapshots (most updates applied); a
worker that already learned keeps its own. Sharing across worker processes is a
later step (see docs/architecture.md)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from online_models.config import EngineConfig
from online_models.engine import PartitionEngine
from online_models.events import Campaign
from online_models.knowledge import SharedKnowledge
from online_models.partitioning import partition_for
from online_models.pipeline import InputRecord, Limits, Pipeline
from streams.clock import now_ms
from streams.faust_fixes.commit_guard import CommitGuard
from streams.faust_fixes.in_order import InOrder
from streams.health import Health
from streams.lag_monitor import LagMonitor
from streams.metrics import Metrics
from streams.output_sender import OutputSender
from streams.reports import Reports
from streams.settings import Settings
from streams.snapshot_restore import SnapshotRestore
from streams.snapshot_writer import SnapshotWriter
from streams.state_store import StateStore
from streams.step_metrics import StepMetrics

log = logging.getLogger(__name__)


class Runtime:
    def __init__(
        self,
        settings: Settings,
        cfg: EngineConfig,
        metrics: Metrics,
        users: StateStore,
        guard: CommitGuard,
        order: InOrder,
        health: Health,
        sender: OutputSender,
        restorer: SnapshotRestore,
        snapshots: SnapshotWriter,
        lag: LagMonitor,
        step_metrics: StepMetrics,
    ) -> None:
        self.settings = settings
        self.cfg = cfg
        self.metrics = metrics
        self.users = users
        self.guard = guard
        self.order = order
        self.health = health
        self.sender = sender
        self.restorer = restorer
        self.snapshots = snapshots
        self.lag = lag
        self.step_metrics = step_metrics
        # configured input topic -> the logical stream its records are decoded as
        self.logical_streams: Mapping[str, str] = settings.input_topics()
        self.campaigns: dict[str, Campaign] = {}
        self.knowledge = SharedKnowledge(cfg, self.campaigns)
        self.engines: dict[int, PartitionEngine] = {}
        self.untouched: set[int] = set()  # restored, users not yet registered for TTL
        # The one pipeline step, the same the replay runs (online_models/pipeline.py).
        self.pipeline = Pipeline(
            cfg,
            self.engines.__getitem__,
            lambda partition: self.users,
            lambda: self.knowledge,
            Limits(settings.max_message_bytes, settings.max_nesting_depth),
            privacy=settings.privacy(),
        )
        self.reports = Reports(metrics, lambda: self.knowledge, self.engines, users, self.campaigns)

    async def handle(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> None:
        tp = (topic, partition)
        if not await self.order.admit(tp, offset):
            return  # read again later, in order (streams/faust_fixes/in_order.py)
        await self._handle(topic, partition, offset, key, value)
        self.guard.processed(tp, offset)

    async def _handle(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> None:
        started = time.perf_counter()
        engine = self.engines.get(partition) or await self.restore(partition)
        if partition in self.untouched:
            self._register_users(partition, engine)
        step = self.pipeline.step(
            InputRecord(topic, self.logical_streams[topic], partition, offset, key, value)
        )
        await self.sender.send_step(topic, step)
        self.pipeline.apply(step)  # after the sends: see online_models/pipeline.py
        self.step_metrics.observe(topic, step, started)
        await self.snapshots.after_event(partition, engine)

    def owned(self) -> set[int]:
        """Input partitions this worker actively owns (standby copies excluded)."""
        return set(self.engines)

    async def restore(self, partition: int) -> PartitionEngine:
        return (await self.restore_many([partition]))[partition]

    async def restore_many(self, partitions: list[int]) -> dict[int, PartitionEngine]:
        """Engines for `partitions` from their latest snapshots; the shared knowledge
        from the newest of them when this worker's knowledge is still empty."""
        restored: dict[int, PartitionEngine] = {}
        newest: dict[str, Any] | None = None
        for partition in partitions:
            engine = self._new_engine(partition)
            state = await self.restorer.load(partition, engine)
            if state is None:  # cold (logged): start from a fresh engine, not a partial one
                engine = self._new_engine(partition)
            else:
                k = state.get("knowledge")
                if k is not None and (
                    newest is None
                    or (k["applied"], k["clock"]) > (newest["applied"], newest["clock"])
                ):
                    newest = k
            self.untouched.add(partition)
            self.engines[partition] = restored[partition] = engine
            self.snapshots.start(partition)
        if newest is not None and self.knowledge.is_empty():
            try:
                knowledge = SharedKnowledge.from_state(
                    newest, cfg=self.cfg, campaigns=self.campaigns
                )
            except (KeyError, ValueError, TypeError) as exc:
                log.error("shared knowledge unusable, starting cold: %s", exc)
            else:
                self.knowledge = knowledge
                for engine in self.engines.values():
                    engine.knowledge = knowledge
                log.info("shared knowledge restored (%d updates)", knowledge.applied)
        return restored

    def _new_engine(self, partition: int) -> PartitionEngine:
        return PartitionEngine(
            self.cfg, partition, self.campaigns, self.knowledge, now_getter=now_ms
        )

    def _register_users(self, partition: int, engine: PartitionEngine) -> None:
        # After table recovery, so that profile TTL expiry also covers restored users.
        self.untouched.discard(partition)
        for user, state in list(self.users.items()):
            if partition_for(user.encode(), self.settings.partitions) == partition:
                engine.touch(user, state.profile.last_seen)

    def drop(self, partitions: set[int]) -> None:
        for p in partitions:
            self.engines.pop(p, None)
            self.untouched.discard(p)
            with contextlib.suppress(KeyError):  # its new owner reports the age
                self.metrics.snapshot_age.remove(str(p))
        self.guard.forget(partitions)
        for topic in self.logical_streams:
            for p in partitions:
                with contextlib.suppress(KeyError):  # a partition moved away has no lag here
                    self.metrics.consumer_lag.remove(topic, str(p))
        self.order.forget(partitions)
