"""Model snapshots stay a bounded share of the worker's time as state grows.

A snapshot encodes the partition's whole engine state while the agent waits; with a
large catalogue that takes long enough to matter. Snapshots due by event count or by
age are spaced so that the last one's cost is at most `snapshot_max_share` of the time
since it ended; an idle partition is still snapshotted by the timer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from online_models.config import EngineConfig
from online_models.engine import PartitionEngine
from streams import snapshot_writer
from streams.metrics import Metrics
from streams.runtime import Runtime
from streams.runtime_factory import build_runtime
from streams.settings import Settings, SettingsError
from streams.state_store import StateStore

P = 2


class SlowTopic:
    """Sending a snapshot chunk takes `cost` seconds of the fake clock."""

    def __init__(self, clock: list[float], cost: float) -> None:
        self.clock, self.cost, self.sent = clock, cost, 0

    async def send(self, **_: Any) -> None:
        self.clock[0] += self.cost
        self.sent += 1


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(snapshot_writer.time, "monotonic", lambda: now[0])
    return now


def runtime(clock: list[float], cost: float, **env: str) -> tuple[Runtime, SlowTopic]:
    settings = Settings.from_env({"ECOM_SNAPSHOT_EVERY_EVENTS": "10", **env})
    topic = SlowTopic(clock, cost)
    rt = build_runtime(
        settings, EngineConfig(), Metrics(), {}, StateStore({}), {"snapshots": topic}
    )
    rt.engines[P] = PartitionEngine(EngineConfig(), P)
    rt.snapshots.start(P)
    return rt, topic


def events(rt: Runtime, n: int) -> None:
    async def run() -> None:
        for _ in range(n):
            await rt.snapshots.after_event(P, rt.engines[P])

    asyncio.run(run())


def test_a_costly_snapshot_spaces_the_next_ones(clock: list[float]) -> None:
    rt, topic = runtime(clock, cost=0.5)
    events(rt, 10)
    assert topic.sent == 1 and rt.snapshots.snapshot_cost[P] == 0.5
    assert rt.snapshots.gap(P) == pytest.approx(0.5 * 0.95 / 0.05)  # 9.5 s
    events(rt, 50)  # due by count, but only 0 s after a 0.5 s snapshot
    assert topic.sent == 1 and rt.snapshots.since_snapshot[P] == 50
    clock[0] += 9.4
    events(rt, 1)
    assert topic.sent == 1
    clock[0] += 0.1  # 9.5 s after: 0.5 / (0.5 + 9.5) = the 5% share
    events(rt, 1)
    assert topic.sent == 2 and rt.snapshots.since_snapshot[P] == 0
    samples = rt.metrics.registry.get_sample_value("ecom_model_snapshot_seconds_count")
    assert samples == 2.0


def test_cheap_snapshots_keep_the_event_count_schedule(clock: list[float]) -> None:
    rt, topic = runtime(clock, cost=0.0)
    events(rt, 35)
    assert topic.sent == 3 and rt.snapshots.since_snapshot[P] == 5


def test_the_share_is_a_setting(clock: list[float]) -> None:
    rt, topic = runtime(clock, cost=0.5, ECOM_SNAPSHOT_MAX_SHARE="0.5")
    events(rt, 10)
    clock[0] += 0.5  # a 50% share allows a gap as long as the snapshot took
    events(rt, 10)
    assert topic.sent == 2
    with pytest.raises(SettingsError, match="SNAPSHOT_MAX_SHARE"):
        Settings.from_env({"ECOM_SNAPSHOT_MAX_SHARE": "0"})
