"""Consumer lag per assigned input partition and broker reachability, from one
request to the broker per refresh."""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

from aiokafka import TopicPartition

from streams.end_offsets import log_end_offsets
from streams.faust_fixes.commit_guard import CommitGuard
from streams.health import Health
from streams.metrics import Metrics
from streams.settings import Settings


class LagMonitor:
    def __init__(
        self,
        settings: Settings,
        consumer_kwargs: Mapping[str, Any],
        guard: CommitGuard,
        health: Health,
        metrics: Metrics,
        input_topics: Container[str],
    ) -> None:
        self.settings = settings
        self.consumer_kwargs = consumer_kwargs
        self.guard = guard
        self.health = health
        self.metrics = metrics
        self.input_topics = input_topics

    async def refresh(self) -> None:
        """Timer-driven: the broker's log-end offset of every assigned input partition
        minus the next offset this worker will process. Read from the broker each time,
        so the figure is true while nothing flows too; the same request tells the
        readiness probe whether the broker can be reached."""
        tps: list[tuple[str, int]] = [
            tp
            for tp in self.guard.next
            if isinstance(tp, tuple) and tp[0] in self.input_topics  # input partitions only
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
