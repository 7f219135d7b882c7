"""Per-worker runtime: one PartitionEngine per assigned partition and ONE shared
knowledge that every engine of this worker reads and feeds, restored from the latest
model snapshots, fed by the agent, with sends, table writes and metrics.

Each partition's snapshot carries the worker's knowledge as of that moment. A worker
whose knowledge is still empty when it restores partitions (a fresh or restarted
process) loads the newest knowledge among their snapshots (most updates applied); a
worker that already learned keeps its own. Sharing across worker processes is a
later step (see docs/architecture.md)."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from online_models.config import EngineConfig
from online_models.engine import PartitionEngine
from online_models.events import Campaign
from online_models.knowledge import SharedKnowledge
from online_models.outputs import BidAdjustment, Recommendation
from online_models.partitioning import partition_for
from online_models.pipeline import REPARTITION, InputRecord, Limits, Pipeline, Step
from online_models.snapshot import SnapshotError, decode_snapshot
from streams.end_offsets import fetch_end_offsets, log_end_offsets
from streams.faust_fixes.commit_guard import CommitGuard
from streams.faust_fixes.in_order import InOrder
from streams.health import Health
from streams.metrics import Metrics
from streams.runtime_reports import Reports
from streams.settings import Settings
from streams.snapshots import SnapshotReadError, chunk_snapshot, read_latest

log = logging.getLogger(__name__)


class Runtime(Reports):
    def __init__(
        self,
        settings: Settings,
        cfg: EngineConfig,
        metrics: Metrics,
        consumer_kwargs: Mapping[str, Any],
    ) -> None:
        self.settings = settings
        self.cfg = cfg
        self.metrics = metrics
        self.consumer_kwargs = consumer_kwargs
        self.campaigns: dict[str, Campaign] = {}
        self.knowledge = SharedKnowledge(cfg, self.campaigns)
        self.engines: dict[int, PartitionEngine] = {}
        self.since_snapshot: dict[int, int] = {}
        self.last_snapshot_at: dict[int, float] = {}
        self.snapshot_cost: dict[int, float] = {}  # seconds the last snapshot took
        self.streams = settings.input_topics()
        self.users: Any = None  # the Faust table, bound by the app
        self.topics: dict[str, Any] = {}  # logical output name -> Faust topic
        self.untouched: set[int] = set()
        self.guard = CommitGuard()
        self.order = InOrder(self.guard, metrics)  # consumer and readiness bound by the app
        self.health = Health(
            stall_after_s=settings.stall_timeout_s, broker_timeout_s=settings.broker_timeout_s
        )
        # The one pipeline step, the same the replay runs (online_models/pipeline.py).
        self.pipeline = Pipeline(
            cfg,
            self.engines.__getitem__,
            lambda partition: self.users,
            lambda: self.knowledge,
            Limits(settings.max_message_bytes, settings.max_nesting_depth),
        )

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
            InputRecord(topic, self.streams[topic], partition, offset, key, value)
        )
        for e in step.emissions:
            target = self.topics[topic] if e.topic == REPARTITION else self.topics[e.topic]
            await target.send(key=e.key, value=e.value, headers=e.headers, partition=e.partition)
        self.pipeline.apply(step)  # after the sends: see online_models/pipeline.py
        self._observe(topic, step, started)
        await self._maybe_snapshot(partition, engine)

    def _observe(self, topic: str, step: Step, started: float) -> None:
        m = self.metrics
        if step.reason is not None:
            m.dead_letters.labels(topic, step.reason).inc()
        elif step.repartitioned:
            m.repartitioned.labels(topic).inc()
        elif step.duplicate:
            m.duplicates_skipped.labels(topic).inc()
        else:
            m.events_in.labels(topic, step.event_type).inc()
            m.event_time_lag.labels(topic).observe(max(0.0, time.time() - step.event_ts / 1000))
        for o in step.outputs:
            if isinstance(o, Recommendation):
                m.events_out.labels(self.settings.topic_recommendations).inc()
                m.recommendations.labels(o.strategy).inc()
            elif isinstance(o, BidAdjustment):
                m.events_out.labels(self.settings.topic_bid_adjustments).inc()
                if o.user_id is not None:
                    m.bid_multiplier.observe(o.multiplier)
                else:
                    m.pacing_factor.labels(m.campaign_label(o.campaign_id)).set(o.pacing_factor)
        if step.reason is not None:
            m.events_out.labels(self.settings.topic_dead_letter).inc()
        m.processing_latency.labels(topic).observe(time.perf_counter() - started)

    async def refresh_lag(self) -> None:
        """Timer-driven: the broker's log-end offset of every assigned input partition
        minus the next offset this worker will process. Read from the broker each time,
        so the figure is true while nothing flows too; the same request tells the
        readiness probe whether the broker can be reached."""
        tps: list[tuple[str, int]] = [
            tp
            for tp in self.guard.next
            if isinstance(tp, tuple) and tp[0] in self.streams  # input partitions only
        ]
        timeout = min(self.settings.broker_timeout_s, max(1.0, self.settings.lag_refresh_s * 2))
        try:
            ends = await log_end_offsets(
                self.consumer_kwargs,
                [TopicPartition(*tp) for tp in tps],
                via_fetch=bool(self.settings.fetch_end_offsets),
                timeout_s=timeout,
            )
        except Exception as exc:  # an unreachable broker is a state to report, not a crash
            self.health.broker_failed(f"{type(exc).__name__}: {exc}")
            return
        self.health.broker_reached()
        self.health.forget(set(tps))
        for tp in tps:
            next_offset = self.guard.next.get(tp)
            end = ends.get(TopicPartition(*tp))
            if next_offset is None or end is None:  # revoked while we asked
                continue
            self.metrics.consumer_lag.labels(tp[0], str(tp[1])).set(max(0, end - next_offset))
            self.health.progress(tp, next_offset, end)

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
            engine = PartitionEngine(
                self.cfg, partition, self.campaigns, self.knowledge, now_getter=_now_ms
            )
            state = await self._load_snapshot(partition, engine)
            if state is None:  # cold (logged): start from a fresh engine, not a partial one
                engine = PartitionEngine(
                    self.cfg, partition, self.campaigns, self.knowledge, now_getter=_now_ms
                )
            else:
                k = state.get("knowledge")
                if k is not None and (
                    newest is None
                    or (k["applied"], k["clock"]) > (newest["applied"], newest["clock"])
                ):
                    newest = k
            self.untouched.add(partition)
            self.engines[partition] = restored[partition] = engine
            self.since_snapshot[partition] = 0
            self.last_snapshot_at[partition] = time.monotonic()
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

    async def _load_snapshot(
        self, partition: int, engine: PartitionEngine
    ) -> dict[str, Any] | None:
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
        seconds = found.age_s(_now_ms())
        age.set(seconds)
        log.info(
            "partition %d: models restored from snapshot %s at offset %d (%d events), "
            "written %.0f s ago, event time %s",
            partition, found.snapshot_id, found.offset, engine.events, seconds,
            "unknown" if found.event_ts is None else _iso(found.event_ts),
        )  # fmt: skip
        return state

    def _register_users(self, partition: int, engine: PartitionEngine) -> None:
        # After table recovery, so that profile TTL expiry also covers restored users.
        self.untouched.discard(partition)
        for user, state in list(self.users.items()):
            if partition_for(user.encode(), self.settings.partitions) == partition:
                engine.touch(user, state.profile.last_seen)

    async def snapshot_idle(self) -> None:
        """Snapshot partitions with unsaved events once input pauses (timer-driven)."""
        for p, engine in list(self.engines.items()):
            stale = time.monotonic() - self.last_snapshot_at[p] >= self.settings.snapshot_every_s
            if self.since_snapshot.get(p) and stale:
                await self.snapshot(p, engine)

    async def _maybe_snapshot(self, partition: int, engine: PartitionEngine) -> None:
        self.since_snapshot[partition] += 1
        elapsed = time.monotonic() - self.last_snapshot_at[partition]
        due = (
            self.since_snapshot[partition] >= self.settings.snapshot_every_events
            or elapsed >= self.settings.snapshot_every_s
        )
        if due and elapsed >= self.snapshot_gap(partition):
            await self.snapshot(partition, engine)

    def snapshot_gap(self, partition: int) -> float:
        """Seconds to wait after a snapshot so that snapshots take at most
        `snapshot_max_share` of the worker's time: their cost grows with the state."""
        share = self.settings.snapshot_max_share
        return self.snapshot_cost.get(partition, 0.0) * (1.0 - share) / share

    async def snapshot(self, partition: int, engine: PartitionEngine) -> None:
        started = time.monotonic()
        written = _now_ms()
        sid = f"p{partition}-e{engine.events}-t{written}"
        chunks = chunk_snapshot(engine.to_state(), sid, engine.attribution.max_ts, written)
        for value, headers in chunks:
            await self.topics["snapshots"].send(
                key=f"p{partition}".encode(), value=value, headers=headers, partition=partition
            )
        self.since_snapshot[partition] = 0
        self.last_snapshot_at[partition] = done = time.monotonic()
        self.snapshot_cost[partition] = done - started
        self.metrics.snapshots.inc()
        self.metrics.snapshot_seconds.observe(done - started)

    def drop(self, partitions: set[int]) -> None:
        for p in partitions:
            self.engines.pop(p, None)
            self.untouched.discard(p)
            with contextlib.suppress(KeyError):  # its new owner reports the age
                self.metrics.snapshot_age.remove(str(p))
        self.guard.forget(partitions)
        for topic in self.streams:
            for p in partitions:
                with contextlib.suppress(KeyError):  # a partition moved away has no lag here
                    self.metrics.consumer_lag.remove(topic, str(p))
        self.order.forget(partitions)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def _now_ms() -> int:
    """Wall clock for the engine's one sanity check (future timestamps); see engine.py."""
    return int(time.time() * 1000)
