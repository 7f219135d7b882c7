"""The table-recovery guard (streams/faust_fixes/recovery_restart.py) without Kafka: a recovery pass
overtaken by a rebalance starts over instead of seeking with the next generation's
offsets, and an offset aiokafka would refuse is never passed to it.
tests/test_rebalance_recovery.py shows the same against two real workers."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from faust.tables.recovery import RebalanceAgain

from streams.faust_fixes import recovery_restart


class FakeConsumer:
    def __init__(self) -> None:
        self.seeks: list[dict[Any, int]] = []

    async def seek_wait(self, offsets: dict[Any, int]) -> None:
        self.seeks.append(dict(offsets))


class FakeRecovery:
    def __init__(self) -> None:
        self.signal_recovery_start = asyncio.Event()
        self.completed_generations: list[int] = []

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        self.completed_generations.append(generation_id)


def guarded() -> tuple[Any, FakeConsumer]:
    recovery = FakeRecovery()
    recovery_restart.install(SimpleNamespace(tables=SimpleNamespace(recovery=recovery)))
    return recovery, FakeConsumer()


def test_an_overtaken_pass_starts_over_instead_of_seeking() -> None:
    recovery, consumer = guarded()
    recovery.signal_recovery_start.set()  # a newer rebalance replaced sets and offsets
    with pytest.raises(RebalanceAgain):
        asyncio.run(recovery._seek_offsets(consumer, {"c1"}, {"c1": None}, "standby"))
    with pytest.raises(RebalanceAgain):
        asyncio.run(recovery.on_recovery_completed(4))
    assert consumer.seeks == [] and recovery.completed_generations == []


def test_a_current_pass_seeks_like_faust_and_skips_invalid_offsets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recovery, consumer = guarded()
    offsets = {"c0": -1, "c1": 41, "c2": None, "c3": -7}
    with caplog.at_level(logging.ERROR):
        asyncio.run(recovery._seek_offsets(consumer, set(offsets), offsets, "active"))
    assert consumer.seeks == [{"c0": 0, "c1": 41}]  # -1 means "nothing read": 0
    assert "c2" in caplog.text and "c3" in caplog.text
    asyncio.run(recovery.on_recovery_completed(5))
    assert recovery.completed_generations == [5]
