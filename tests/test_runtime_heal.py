"""Records past a hole wait for the hole: the worker applies every partition in
offset order, reading skipped records again, even when Faust undoes its seek.

Faust drops records it fetched during table recovery and goes on from later offsets
(seen in the SIGKILL test: after a restart a partition jumped from offset 1 to 699).
Applying 699.. first and 1..698 after them lost events of busy users (an older record
looked like one already applied) and miscounted sessions. So a record past the hole is
skipped (not applied, never committed past) and the partition is sought back. Faust
also drops fetched records below the latest offset of the batch it is draining, which
can undo the seek: while the hole stays open, the runtime seeks again once per
RESEEK_S (on the next record past it, or from a timer when none comes), and gives a
hole up after HOLE_GIVE_UP_S (offsets deleted by retention never come back).
(streams/faust_fixes/in_order.py.) A record that arrives while tables recover is
skipped the same way, never held in the agent (a held record deadlocked rebalances)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.types import TP as faust_tp

from online_models.config import EngineConfig
from online_models.pipeline import InputRecord
from streams.faust_fixes import in_order
from streams.faust_fixes.in_order import HOLE_GIVE_UP_S, RESEEK_S
from streams.metrics import Metrics
from streams.runtime import Runtime
from streams.runtime_factory import build_runtime
from streams.settings import Settings
from streams.state_store import StateStore

TP = ("clickstream", 1)


class FakeConsumer:
    def __init__(self) -> None:
        self.seeks: list[int] = []
        self.assigned = {TP}

    def assignment(self) -> set[Any]:
        return {faust_tp(*tp) for tp in self.assigned}

    async def seek(self, tp: Any, offset: int) -> None:
        assert (tp.topic, tp.partition) == TP
        self.seeks.append(offset)

    def highwater(self, topic: str, partition: int) -> int | None:
        return None


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(in_order.time, "monotonic", lambda: now[0])
    return now


def runtime() -> tuple[Runtime, list[int], FakeConsumer]:
    # One input topic here: no event-time merge with the others (online_models/merge.py).
    settings = Settings.from_env({"ECOM_INPUT_IDLE_MS": "0"})
    rt = build_runtime(settings, EngineConfig(), Metrics(), {}, StateStore({}), {})
    rt.order.consumer = FakeConsumer()
    rt.guard.start(TP, 0)
    applied: list[int] = []

    async def fake_handle(rec: InputRecord, event: Any) -> None:
        assert rec.offset is not None
        applied.append(rec.offset)

    rt._handle = fake_handle  # type: ignore[method-assign, assignment]
    return rt, applied, rt.order.consumer


def feed(rt: Runtime, *offsets: int) -> None:
    async def run() -> None:
        for offset in offsets:
            await rt.handle(TP[0], TP[1], offset, None, b"")

    asyncio.run(run())


def test_records_past_a_hole_wait_until_it_is_read_again(clock: list[float]) -> None:
    rt, applied, consumer = runtime()
    feed(rt, 0)
    feed(rt, 699, 700, 701)  # 1..698 never arrived: skip these, seek back once
    assert applied == [0] and consumer.seeks == [1]
    clock[0] += RESEEK_S
    feed(rt, 702)  # still past the hole: the seek was undone, seek again
    assert consumer.seeks == [1, 1]
    feed(rt, *range(1, 703))  # the read-back, in order, then on
    assert applied == list(range(703)) and consumer.seeks == [1, 1]
    assert rt.guard.next[TP] == 703 and TP not in rt.order.holes
    feed(rt, 702, 703)  # a redelivered record is passed on (the state dedups it)
    assert applied[-2:] == [702, 703]


def test_a_hole_that_never_refills_is_given_up(clock: list[float]) -> None:
    rt, applied, consumer = runtime()
    feed(rt, 0, 50)
    for _ in range(3):
        clock[0] += HOLE_GIVE_UP_S / 2
        feed(rt, 50)
    assert applied == [0, 50] and rt.guard.next[TP] == 51
    assert len(consumer.seeks) == 3


def test_a_hole_left_open_when_records_stop_is_sought_again_by_the_timer(
    clock: list[float],
) -> None:
    """The last records past a hole arrived within RESEEK_S of a seek that Faust then
    undid (seen in the SIGKILL test: an order of offset 1..70 never applied): with no
    more arrivals, only the timer can seek again."""
    rt, applied, consumer = runtime()
    feed(rt, 0, 5, 6)  # 1..4 missing: one seek, then 6 arrives within RESEEK_S
    assert consumer.seeks == [1]
    asyncio.run(rt.order.reseek())  # too soon after the seek
    assert consumer.seeks == [1]
    clock[0] += RESEEK_S
    asyncio.run(rt.order.reseek())
    assert consumer.seeks == [1, 1]
    feed(rt, *range(1, 7))
    assert applied == list(range(7)) and not rt.order.holes
    clock[0] += RESEEK_S
    asyncio.run(rt.order.reseek())  # nothing open: no seek
    assert consumer.seeks == [1, 1]


def test_a_seek_to_a_partition_revoked_meanwhile_is_skipped(clock: list[float]) -> None:
    """A rebalance can take the partition away between the hole and the (timer's) seek:
    aiokafka would raise from the agent or the timer; the seek is skipped, logged, and
    the hole forgotten (the new owner reads from the committed offset, below it)."""
    rt, applied, consumer = runtime()
    feed(rt, 0, 5)
    assert consumer.seeks == [1] and TP in rt.order.holes
    consumer.assigned = set()
    clock[0] += RESEEK_S
    asyncio.run(rt.order.reseek())
    assert consumer.seeks == [1] and TP not in rt.order.holes
    assert applied == [0]


def test_a_record_arriving_while_tables_recover_is_skipped_not_held(clock: list[float]) -> None:
    """Held in the agent, it kept Faust's rebalance waiting for it (`wait_empty`) while
    recovery waited for the rebalance: a deadlock until a 2-minute limit. Skipped, it
    is read again in order once the tables are ready, never committed past meanwhile."""
    rt, applied, consumer = runtime()
    feed(rt, 0, 1)
    ready = [False]
    rt.order.is_ready = lambda: ready[0]
    feed(rt, 2, 3)  # returns at once: nothing applied, nothing sought during recovery
    assert applied == [0, 1] and rt.guard.next[TP] == 2 and consumer.seeks == []
    clock[0] += 10 * HOLE_GIVE_UP_S  # a long recovery does not give the records up
    asyncio.run(rt.order.reseek())
    assert consumer.seeks == []
    ready[0] = True
    feed(rt, 4)  # the next record past them: seek back to 2
    assert applied == [0, 1] and consumer.seeks == [2]
    feed(rt, 2, 3, 4)
    assert applied == [0, 1, 2, 3, 4] and not rt.order.holes


def test_skipped_while_recovering_with_nothing_after_them_the_timer_reads_them(
    clock: list[float],
) -> None:
    """The last records of a partition skipped while tables recover: no later arrival
    would find the hole, so the timer seeks back once the tables are ready."""
    rt, applied, consumer = runtime()
    ready = [False]
    rt.order.is_ready = lambda: ready[0]
    feed(rt, 0, 1)
    assert applied == [] and rt.guard.next[TP] == 0
    ready[0] = True
    clock[0] += RESEEK_S
    asyncio.run(rt.order.reseek())
    assert consumer.seeks == [0]
    feed(rt, 0, 1)
    assert applied == [0, 1] and not rt.order.holes
