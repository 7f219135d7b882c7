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

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from online_models.config import EngineConfig
from online_models.engine import PartitionEngine
from online_models.events import Campaign
from online_models.knowledge import SharedKnowledge
from online_models.merge import EVENT_STREAMS, EventTimeMerge
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


def _no_context(source: Any) -> AbstractContextManager[None]:
    return contextlib.nullcontext()


def _never(stream: str) -> bool:
    return False


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
        event_context: Callable[[Any], AbstractContextManager[None]] = _no_context,
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
        # Makes a record the driver's current one while it is applied (Faust's tables
        # write to the current event's partition: streams/faust_fixes/event_context.py).
        self.event_context = event_context
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
        # A partition's input topics, applied in event time (online_models/merge.py).
        self.topic_of = {stream: topic for topic, stream in self.logical_streams.items()}
        # Only the event streams: an erasure request is applied when it is read (it has
        # no place in event time, and a topic that rarely carries one must hold nothing).
        self.merge: EventTimeMerge[tuple[InputRecord, Any, Any]] = EventTimeMerge(
            [s for s in self.logical_streams.values() if s in EVENT_STREAMS],
            settings.input_idle_ms,
            now_ms,
        )
        self._generation: dict[int, int] = {}  # partition -> times it was dropped
        self._applying = asyncio.Lock()  # the agent and the idle timer both release
        self.reports = Reports(metrics, lambda: self.knowledge, self.engines, users, self.campaigns)

    async def handle(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        source: Any = None,
        copy_of: tuple[int, int] | None = None,
    ) -> None:
        """One record read from Kafka: queued in its partition's event-time merge, then
        whatever the merge releases is applied (this record, earlier ones, or nothing
        yet: a topic of the partition that is behind holds it at most input_idle_ms).
        `source`: the driver's own record (Faust's event), made current while the
        record is applied (`event_context`); `copy_of`: the original's place, for a
        record this service repartitioned (`online_models.pipeline.copy_of`)."""
        self.health.broker_reached()  # a record fetched: the broker answers
        tp = (topic, partition)
        expected = self.order.expected(tp)
        if not await self.order.admit(tp, offset):
            return  # read again later, in order (streams/faust_fixes/in_order.py)
        if expected is not None and offset < expected:
            # Read again (a rewind): what the merge holds from here on comes again.
            self.merge.discard(self.logical_streams[topic], partition, offset)
        rec = InputRecord(
            topic, self.logical_streams[topic], partition, offset, key, value, copy_of
        )
        if rec.stream not in self.merge.streams:
            async with self._applying:
                with self.event_context(source):
                    await self._handle(rec, None)
                self.guard.processed(tp, offset)
            return
        event, ts = self.pipeline.peek(rec)
        self.merge.add(rec.stream, partition, offset, ts, (rec, event, source))
        await self.release(partition)

    async def release(self, partition: int) -> None:
        """Apply what the partition's merge releases, in order; also called by a timer
        (streams/app.py) so that a silent topic holds the others only input_idle_ms."""
        async with self._applying:
            if not self.order.is_ready():
                # Admitted while this worker held the partition, and it may not now
                # (group_lease.py): kept, applied by a later release (the idle timer)
                # once it may; a revocation drops them (`drop`), their new owner reads them.
                return
            generation = self._generation.get(partition, 0)
            if self.settings.input_skip_caught_up:
                caught_up = lambda stream: self._caught_up(stream, partition)  # noqa: E731
            else:
                caught_up = _never
            try:
                for rec, event, source in self.merge.ready(partition, caught_up):
                    if self._generation.get(partition, 0) != generation:
                        return  # revoked while these were applied: the new owner reads them
                    with self.event_context(source):
                        await self._handle(rec, event)
                    self.guard.processed((rec.topic, rec.partition), rec.offset or 0)
            except BaseException:
                # Released but not applied (a send failed): drop what is held and read the
                # partition again from what was applied (in_order.py seeks back to it).
                self.merge.forget({partition})
                self.order.rewind(partition)
                raise

    async def release_idle(self) -> None:
        for partition in self.merge.partitions():
            await self.release(partition)

    def _caught_up(self, stream: str, partition: int) -> bool:
        # Nothing more to read right now: the next offset to read is the log end that
        # the latest fetch response reported (None before the first: not known).
        topic = self.topic_of[stream]
        end = self.order.consumer.highwater(topic, partition)
        if end is None:
            return False
        position = self.order.expected((topic, partition))
        return position is not None and position >= end

    async def _handle(self, rec: InputRecord, event: Any) -> None:
        started = time.perf_counter()
        partition = rec.partition
        engine = self.engines.get(partition) or await self.restore(partition)
        if partition in self.untouched:
            self._register_users(partition, engine)
        step = self.pipeline.step(rec, event)
        topic = rec.topic
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
        self.merge.forget(partitions)  # not processed, not committed: redelivered
        for p in partitions:
            self._generation[p] = self._generation.get(p, 0) + 1
