"""Records the consumer skipped must be read again, even when Faust undoes the seek.

Faust drops every fetched record below the latest offset of the batch it is still
draining, so a seek back issued mid-batch can be silently undone (seen in the SIGKILL
test: after a restart, a partition jumped from offset 1 to 699 and the read-back of
1..698 never came). The runtime therefore seeks again, at most once per RESEEK_S,
while records keep arriving past the hole, and stops once the hole has refilled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from online_models.config import EngineConfig
from streams import runtime as runtime_module
from streams.metrics import Metrics
from streams.runtime import RESEEK_S, Runtime
from streams.settings import Settings

TP = ("clickstream", 1)


class FakeConsumer:
    def __init__(self) -> None:
        self.seeks: list[int] = []

    async def seek(self, tp: Any, offset: int) -> None:
        assert (tp.topic, tp.partition) == TP
        self.seeks.append(offset)


def test_seek_back_is_repeated_until_the_hole_refills(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(runtime_module.time, "monotonic", lambda: clock[0])
    rt = Runtime(Settings.from_env({}), EngineConfig(), Metrics(), {})
    rt.consumer = FakeConsumer()
    rt.guard.start(TP, 0)

    async def feed(*offsets: int) -> list[int]:
        for offset in offsets:
            await rt._heal(TP, offset)
        return rt.consumer.seeks

    assert asyncio.run(feed(0)) == []  # in order
    assert asyncio.run(feed(699)) == [1]  # 1..698 skipped: read them again
    assert asyncio.run(feed(700, 701)) == [1]  # the batch drains: no seek storm
    clock[0] += RESEEK_S
    assert asyncio.run(feed(702)) == [1, 1]  # still past the hole: the seek was undone
    assert asyncio.run(feed(*range(1, 699))) == [1, 1]  # refilled in order: no new seek
    assert rt.guard.hole(TP) is None and TP not in rt.seeking
    assert rt.guard.next[TP] == 703
    clock[0] += RESEEK_S
    assert asyncio.run(feed(703, 704)) == [1, 1]  # back to normal
