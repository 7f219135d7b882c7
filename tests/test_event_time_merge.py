"""The live worker's event-time merge of a partition's input topics
(online_models/merge.py) gives the replay's order, whatever order the topics are read
in; and the runtime applies records in that order, never past a revocation."""

from __future__ import annotations

import asyncio
import heapq
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from online_models.config import EngineConfig
from online_models.merge import EventTimeMerge, order_key
from online_models.pipeline import InputRecord
from streams.metrics import Metrics
from streams.runtime import Runtime
from streams.runtime_factory import build_runtime
from streams.settings import Settings
from streams.state_store import StateStore

STREAMS = ["ad-impressions", "clickstream", "orders"]
never = lambda stream: False  # noqa: E731
T0 = 1_700_000_000_000


@st.composite
def topics_and_reads(draw: Any) -> tuple[dict[str, list[int]], list[str]]:
    """Per stream a time-sorted list of event times, and an order of reading them (a
    sequence of stream names: which topic's next record arrives next)."""
    per = {s: sorted(draw(st.lists(st.integers(0, 50), max_size=12))) for s in STREAMS}
    reads = [s for s in STREAMS for _ in per[s]]
    return per, draw(st.permutations(reads))


@settings(max_examples=300, deadline=None)
@given(topics_and_reads())
def test_any_read_order_gives_the_replays_order(case: Any) -> None:
    per, reads = case
    clock = [0]
    merge: EventTimeMerge[tuple[str, int]] = EventTimeMerge(STREAMS, 100, lambda: clock[0])
    nxt = dict.fromkeys(STREAMS, 0)
    out: list[tuple[str, int]] = []
    for stream in reads:
        i = nxt[stream]
        nxt[stream] += 1
        merge.add(stream, 0, i, per[stream][i], (stream, i))
        out += merge.ready(0, never)
    clock[0] += 100  # the input has stopped: whatever is held goes after max_idle_ms
    out += merge.ready(0, never)
    # The replay: every event sorted by (ts, stream rank), ties within a stream in order.
    expected = [
        (s, i)
        for _, _, s, i in heapq.merge(
            *([(*order_key(ts, s), s, i) for i, ts in enumerate(per[s])] for s in STREAMS)
        )
    ]
    assert out == expected
    assert merge.held() == 0


def test_a_caught_up_topic_holds_nothing_and_an_undecodable_record_keeps_its_place() -> None:
    merge: EventTimeMerge[str] = EventTimeMerge(STREAMS, 10_000, lambda: 0)
    merge.add("clickstream", 0, 0, 5, "c@5")
    merge.add("clickstream", 0, 1, None, "bad")  # takes 5, its predecessor's time
    merge.add("clickstream", 0, 2, 9, "c@9")
    assert merge.ready(0, lambda s: s != "clickstream") == ["c@5", "bad", "c@9"]


def test_a_rewound_topic_drops_what_comes_again_and_a_revoked_partition_everything() -> None:
    merge: EventTimeMerge[str] = EventTimeMerge(STREAMS, 10_000, lambda: 0)
    for offset in range(4):
        merge.add("orders", 3, offset, offset, f"o{offset}")
    merge.discard("orders", 3, 2)  # offsets 2 and 3 are read again
    assert merge.held() == 2
    merge.forget({3})
    assert merge.held() == 0 and merge.partitions() == []


def _runtime(idle_ms: int) -> tuple[Runtime, list[tuple[str, int]]]:
    settings_ = Settings.from_env(
        {"ECOM_INPUT_IDLE_MS": str(idle_ms), "ECOM_INPUT_SKIP_CAUGHT_UP": "0"}
    )
    rt = build_runtime(settings_, EngineConfig(), Metrics(), {}, StateStore({}), {})
    applied: list[tuple[str, int]] = []

    async def fake_handle(rec: InputRecord, event: Any) -> None:
        assert rec.offset is not None
        applied.append((rec.stream, rec.offset))

    rt._handle = fake_handle  # type: ignore[method-assign]
    for topic in rt.logical_streams:
        rt.guard.start((topic, 0), 0)
    return rt, applied


def _click(ts: int) -> bytes:
    return b'{"event_id":"c%d","ts":%d,"user_id":"u","type":"view","item_id":"i"}' % (ts, ts)


def _order(ts: int) -> bytes:
    return (
        b'{"event_id":"o%d","ts":%d,"user_id":"u","order_id":"o%d","status":"placed",'
        b'"items":[{"item_id":"i","price":1.0,"quantity":1}]}' % (ts, ts, ts)
    )


def _impression(ts: int) -> bytes:
    return (
        b'{"event_id":"a%d","ts":%d,"user_id":"u","impression_id":"a%d","campaign_id":"c",'
        b'"bid":1.0,"cost":0.5}' % (ts, ts, ts)
    )


def test_the_runtime_applies_an_order_read_after_a_later_click_first() -> None:
    rt, applied = _runtime(idle_ms=60_000)
    topics = {stream: topic for topic, stream in rt.logical_streams.items()}

    async def run() -> None:
        await rt.handle(topics["clickstream"], 0, 0, b"u", _click(T0 + 2_000))
        await rt.handle(topics["ad-impressions"], 0, 0, b"u", b"not json")  # time: none
        assert applied == []  # orders may still bring something earlier
        await rt.handle(topics["orders"], 0, 0, b"u", _order(T0 + 1_000))
        assert applied == [("ad-impressions", 0)]  # the undecodable one, first
        await rt.handle(topics["ad-impressions"], 0, 1, b"u", _impression(T0 + 3_000))
        # The order before the click read ahead of it; the click waits for orders again.
        assert applied[1:] == [("orders", 0)]
        assert rt.guard.next[(topics["clickstream"], 0)] == 0  # not committed past it
        assert rt.guard.next[(topics["ad-impressions"], 0)] == 1
        rt.drop({0})  # revoked: what is held is read by the next owner
        assert rt.merge.held() == 0

    asyncio.run(run())


def test_a_failed_apply_drops_what_is_held_and_reads_the_partition_again() -> None:
    rt, _ = _runtime(idle_ms=0)
    topics = {stream: topic for topic, stream in rt.logical_streams.items()}
    clicks = topics["clickstream"]

    async def failing(rec: InputRecord, event: Any) -> None:
        raise RuntimeError("send failed")

    rt._handle = failing  # type: ignore[method-assign]

    async def run() -> None:
        with pytest.raises(RuntimeError):
            await rt.handle(clicks, 0, 0, b"u", _click(T0))
        assert rt.merge.held() == 0 and rt.guard.next[(clicks, 0)] == 0
        # The next offset is past what was applied: a hole, to be read again.
        assert rt.order.expected((clicks, 0)) == 0

    asyncio.run(run())
