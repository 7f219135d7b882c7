"""Builds a `Runtime` and its collaborators in one call, from the Faust objects the
app made first (or plain fakes in tests)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from online_models.config import EngineConfig
from streams.faust_fixes.commit_guard import CommitGuard
from streams.faust_fixes.in_order import InOrder
from streams.health import Health
from streams.lag_monitor import LagMonitor
from streams.metrics import Metrics
from streams.output_sender import OutputSender
from streams.ports import InputConsumer, NoConsumer, OutputTopic
from streams.runtime import Runtime
from streams.settings import Settings
from streams.snapshot_restore import SnapshotRestore
from streams.snapshot_writer import SnapshotWriter
from streams.state_store import StateStore
from streams.step_metrics import StepMetrics


def build_runtime(
    settings: Settings,
    cfg: EngineConfig,
    metrics: Metrics,
    consumer_kwargs: Mapping[str, Any],
    users: StateStore,
    topics: Mapping[str, OutputTopic],
    tables_ready: Callable[[], bool] = lambda: True,
    consumer: InputConsumer | None = None,
    event_context: Callable[[Any], AbstractContextManager[None]] | None = None,
    writer: Callable[[], bytes] | None = None,
) -> Runtime:
    """`topics`: each logical output name and each input topic by its configured name.
    `tables_ready`: whether records may be applied now: Faust's tables are recovered and
    the worker holds its partitions (records are read again later otherwise).
    `event_context`: makes the driver's record current while it is applied.
    `consumer`: the input consumer (none: tools and tests that feed records).
    `writer`: the value of every output's `ecom-writer` header (who wrote it)."""
    consumer = consumer or NoConsumer()
    guard = CommitGuard()
    order = InOrder(guard, metrics, consumer, tables_ready)
    health = Health(
        stall_after_s=settings.stall_timeout_s, broker_timeout_s=settings.broker_timeout_s
    )
    sender = OutputSender(topics, writer)
    return Runtime(
        settings,
        cfg,
        metrics,
        users,
        guard,
        order,
        health,
        sender,
        SnapshotRestore(settings, metrics, consumer_kwargs),
        SnapshotWriter(settings, metrics, sender),
        LagMonitor(settings, consumer_kwargs, guard, health, metrics, settings.input_topics()),
        StepMetrics(settings, metrics),
        event_context or (lambda source: nullcontext()),
    )
