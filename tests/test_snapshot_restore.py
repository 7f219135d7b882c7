"""Restore finds the newest complete model snapshot, deterministically.

`newest_complete` (which chunks make the newest complete snapshot) is tested without
Kafka; the integration tests write several snapshots, an incomplete last one among
them, to the embedded broker and restore a partition engine from them."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from typing import Any

import pytest
from confluent_kafka import Producer
from live_support import setup_topics

from online_models.config import EngineConfig
from online_models.engine import PartitionEngine
from streams import snapshot_restore
from streams import snapshots as snapshots_module
from streams.app import kafka_client_kwargs
from streams.end_offsets import fetch_end_offsets
from streams.metrics import Metrics
from streams.runtime_factory import build_runtime
from streams.snapshots import (
    Snapshot,
    SnapshotReadError,
    chunk_snapshot,
    newest_complete,
    read_latest,
)
from streams.state_store import StateStore

Record = tuple[int, list[tuple[str, bytes]], bytes, int]


def chunks(sid: str, n: int, first_offset: int, ts: int = 1_000) -> list[Record]:
    """A snapshot of `n` chunks (value `sid:i`) with today's headers."""
    return [
        (
            first_offset + i,
            [("snapshot_id", sid.encode()), ("chunk", b"%d" % i), ("chunks", b"%d" % n),
             ("event_ts", b"777"), ("written_ms", b"%d" % (ts + 5))],
            f"{sid}:{i};".encode(),
            ts,
        )
        for i in range(n)
    ]  # fmt: skip


def blob(sid: str, n: int) -> bytes:
    return b"".join(f"{sid}:{i};".encode() for i in range(n))


def test_the_last_complete_snapshot_wins_over_an_incomplete_newer_one() -> None:
    records = chunks("a", 2, 0) + chunks("b", 3, 2) + chunks("c", 3, 5)[:2]
    found = newest_complete(records)
    assert found == Snapshot("b", blob("b", 3), offset=4, event_ts=777, written_ms=1_005)


def test_newest_is_by_log_position_even_when_writers_interleave() -> None:
    # Two owners of a partition around a rebalance: their chunks can interleave.
    a, b = chunks("a", 2, 0), chunks("b", 2, 0)
    records = [(0, *a[0][1:]), (1, *b[0][1:]), (2, *a[1][1:]), (3, *b[1][1:])]
    found = newest_complete(records)  # type: ignore[arg-type]
    assert found is not None and (found.snapshot_id, found.offset) == ("b", 3)
    assert found.blob == blob("b", 2)


def test_a_repeated_id_starts_over_at_its_chunk_zero() -> None:
    first = chunks("a", 3, 0)[:2]  # the writer died after two chunks
    again = chunks("a", 3, 2)  # and wrote the same id again
    found = newest_complete(first + again)
    assert found is not None and found.blob == blob("a", 3) and found.offset == 4


def test_records_without_snapshot_headers_or_out_of_order_are_ignored() -> None:
    junk: list[Any] = [(0, [], b"x", 1), (1, [("chunk", b"zz")], b"y", 1)]
    skipped = chunks("b", 3, 2)
    records = junk + chunks("a", 1, 2) + [skipped[0], skipped[2]]  # b's chunk 1 missing
    found = newest_complete(records)
    assert found is not None and found.snapshot_id == "a"


def test_a_window_starting_inside_a_snapshot_finds_nothing() -> None:
    assert newest_complete(chunks("a", 3, 0)[1:]) is None
    assert newest_complete([]) is None


def test_snapshots_written_before_the_time_headers_still_load() -> None:
    old = [(9, [("snapshot_id", b"p0-e5"), ("chunk", b"0"), ("chunks", b"1")], b"v", 42_000)]
    found = newest_complete(old)
    assert found == Snapshot("p0-e5", b"v", 9, event_ts=None, written_ms=42_000)
    assert found.age_s(45_500) == 3.5


def test_chunks_carry_creation_times() -> None:
    [(_, headers)] = chunk_snapshot({"events": 1}, "p1-e1-t5", event_ts=123, written_ms=456)
    assert dict(headers)["event_ts"] == b"123" and dict(headers)["written_ms"] == b"456"


# --------------------------------------------------------------------------------------
# Against the embedded broker
# --------------------------------------------------------------------------------------

P = 1


def engine_state(events: int) -> dict[str, Any]:
    engine = PartitionEngine(EngineConfig(partitions=2), P)
    engine.events = events
    return engine.to_state()


def write(bootstrap: str, topic: str, partition: int, rows: list[tuple[Any, ...]]) -> None:
    """(value, headers, timestamp ms) rows, in order, to one partition."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for value, headers, ts in rows:
        producer.produce(topic, value, b"p%d" % partition, partition=partition,
                         headers=headers, timestamp=ts)  # fmt: skip
    assert producer.flush(15) == 0


def snapshot_rows(events: int, written_ms: int) -> list[tuple[Any, ...]]:
    sid = f"p{P}-e{events}-t{written_ms}"
    parts = chunk_snapshot(engine_state(events), sid, event_ts=events * 1000, written_ms=written_ms)
    return [(value, headers, written_ms) for value, headers in parts]


@pytest.mark.integration
def test_restore_loads_the_newest_complete_snapshot(
    broker, fast_worker_env, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = setup_topics(fast_worker_env)
    topic = settings.topic_snapshots
    # Small chunks, and a first window smaller than one snapshot, so the read steps back.
    monkeypatch.setattr(snapshots_module, "CHUNK_BYTES", 200)
    monkeypatch.setattr(snapshots_module, "FIRST_WINDOW", 2)
    now = int(time.time() * 1000)
    old_format = snapshot_rows(10, now - 7_200_000)
    old_format = [(v, [h for h in hs if h[0] in ("snapshot_id", "chunk", "chunks")], ts)
                  for v, hs, ts in old_format]  # fmt: skip
    newest = snapshot_rows(30, now - 60_000)
    unfinished = snapshot_rows(40, now - 1_000)
    assert len(newest) >= 3 and len(unfinished) >= 3, "snapshots must span several chunks"
    rows = old_format + snapshot_rows(20, now - 600_000) + [(b"junk", [], now)] + newest
    write(broker.bootstrap, topic, P, rows + unfinished[:-1])
    write(broker.bootstrap, topic, 0, old_format)

    rt = build_runtime(
        settings,
        EngineConfig(partitions=2),
        Metrics(),
        kafka_client_kwargs(settings),
        StateStore({}),
        {},
    )
    with caplog.at_level(logging.INFO, logger="streams.snapshot_restore"):
        engine = asyncio.run(rt.restore(P))
        cold_format = asyncio.run(rt.restore(0))
    assert engine.events == 30
    assert f"snapshot p{P}-e30-t{now - 60_000}" in caplog.text
    age = rt.metrics.registry.get_sample_value(
        "ecom_model_snapshot_age_seconds", {"partition": str(P)}
    )
    assert age is not None and 60 <= age < 600
    # A snapshot without the time headers loads; its age comes from the record time.
    assert cold_format.events == 10
    old_age = rt.metrics.registry.get_sample_value(
        "ecom_model_snapshot_age_seconds", {"partition": "0"}
    )
    assert old_age is not None and 7_200 <= old_age < 7_800


@pytest.mark.integration
def test_a_partition_that_cannot_be_read_to_its_end_is_an_error_not_an_old_model(
    broker, fast_worker_env, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = setup_topics(fast_worker_env)
    topic = settings.topic_snapshots
    write(broker.bootstrap, topic, P, snapshot_rows(20, int(time.time() * 1000)))
    kwargs = kafka_client_kwargs(settings)
    tp = snapshots_module.TopicPartition(topic, P)
    end = asyncio.run(fetch_end_offsets(kwargs, [tp]))[tp]
    found = asyncio.run(read_latest(kwargs, topic, P, end_offset=end, timeout_s=10))
    assert found is not None and found.snapshot_id.startswith(f"p{P}-e20")
    # An end the reader cannot reach (a broker that stops answering looks the same).
    with pytest.raises(SnapshotReadError, match="only read up to offset"):
        asyncio.run(read_latest(kwargs, topic, P, end_offset=10_000, timeout_s=1.5))

    async def unreachable_end(*_: Any) -> dict[Any, int]:
        return {snapshots_module.TopicPartition(topic, P): 10_000}

    monkeypatch.setattr(snapshot_restore, "fetch_end_offsets", unreachable_end)
    monkeypatch.setattr(
        snapshot_restore, "read_latest", functools.partial(read_latest, timeout_s=1.5)
    )
    rt = build_runtime(settings, EngineConfig(partitions=2), Metrics(), kwargs, StateStore({}), {})
    with caplog.at_level(logging.ERROR, logger="streams.snapshot_restore"):
        engine = asyncio.run(rt.restore(P))
    assert engine.events == 0  # cold, and said so
    assert "snapshots unreadable, models start cold" in caplog.text
    registry = rt.metrics.registry
    assert registry.get_sample_value("ecom_model_snapshot_restore_errors_total") == 1.0
    age = registry.get_sample_value("ecom_model_snapshot_age_seconds", {"partition": str(P)})
    assert age is not None and math.isnan(age)
