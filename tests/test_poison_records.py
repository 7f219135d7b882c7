"""No record can stop a partition: whatever bytes arrive, `Pipeline.step` (the one
step the agent and the replay call per record) returns a step, and every refusal is a
dead letter that names its reason and keeps the original bytes."""

from __future__ import annotations

import base64
import collections
import json
import random
from typing import Any

import msgspec
import orjson
import pytest

from backtest.synthetic import generate
from online_models.config import DAY_MS, EngineConfig
from online_models.decode import REASONS
from online_models.engine import PartitionEngine
from online_models.events import ClickEvent
from online_models.outputs import DeadLetter
from online_models.partitioning import partition_for
from online_models.pipeline import DictStates, InputRecord, Pipeline, Step
from online_models.recommend import Recommender

PARTITIONS = 1
FUZZ_CASES = 100_000
YEAR_MS = 365 * DAY_MS


def _valid_records(seed: int) -> list[tuple[str, dict[str, Any]]]:
    return list(generate(n_users=300, duration_s=2 * 3600, seed=seed))


def _mutate(rng: random.Random, stream: str, event: dict[str, Any]) -> bytes | None:
    """One seeded mutation of a valid event: structural, byte-level or semantic."""
    raw = orjson.dumps(event)
    kind = rng.randrange(14)
    if kind == 0:  # flip bytes
        data = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 1:  # truncate
        return raw[: rng.randrange(len(raw))]
    if kind == 2:  # deep nesting, in a field or as the whole record
        depth = rng.choice([33, 200, 1000, 5000, 20_000])
        nest = b"[" * depth + b"]" * depth
        return nest if rng.random() < 0.3 else raw[:-1] + b',"x":' + nest + b"}"
    if kind == 3:  # far-future or far-past event time
        shift = rng.choice([2 * DAY_MS, YEAR_MS, 30 * YEAR_MS, -30 * YEAR_MS])
        return orjson.dumps({**event, "ts": int(event["ts"]) + shift})
    if kind == 4:  # huge or odd numbers
        field = rng.choice(["price", "cost", "total", "quantity", "ts", "position"])
        value = rng.choice([1e308, -1e308, 10**30, -(10**30), 0, -1, 1e-320, True, "NaN"])
        return json.dumps({**event, field: value}).encode()  # json: ints beyond 64 bits
    if kind == 5:  # wrong types for any field
        key = rng.choice(list(event))
        return orjson.dumps({**event, key: rng.choice([None, [], {}, 1.5, "x", [1], {"a": 1}])})
    if kind == 6:  # drop a field
        key = rng.choice(list(event))
        return orjson.dumps({k: v for k, v in event.items() if k != key})
    if kind == 7:  # null value (tombstone) or empty bytes
        return rng.choice([None, b""])
    if kind == 8:  # random bytes, sometimes a pickle opener
        head = rng.choice([b"", b"\x80\x04", b"(", b"{", b"["])
        return head + rng.randbytes(rng.randint(0, 64))
    if kind == 9:  # long strings and odd unicode in ids
        key = rng.choice(["user_id", "item_id", "category", "campaign_id", "event_id"])
        value = rng.choice(["", "\u0000", "\ud7ff" * 50, "x" * 5000, "🛒" * 300])
        return orjson.dumps({**event, key: value})
    if kind == 10:  # a JSON value that is not an object
        return rng.choice([b"1", b"null", b'"s"', b"[]", b"true", b"1e999"])
    if kind == 11:  # many items or huge nested item lists
        items = [{"item_id": f"i{i}", "quantity": 1, "price": 1.0} for i in range(600)]
        return orjson.dumps({**event, "items": items})
    if kind == 12:  # a valid event of another stream
        return raw
    return raw  # unchanged: valid events between the poison keep state moving


def _pipeline(engine: PartitionEngine, states: DictStates) -> Pipeline:
    return Pipeline(engine.cfg, lambda p: engine, lambda p: states, lambda: engine.knowledge)


def _handle(engine: PartitionEngine, states: DictStates, stream: str,
            offset: int, value: bytes | None) -> Step:  # fmt: skip
    key = None
    if value:
        try:
            key = str(orjson.loads(value).get("user_id", "")).encode()
        except Exception:  # the fuzz makes bytes no parser accepts; keys are then absent
            key = b"?"
    pipeline = _pipeline(engine, states)
    step = pipeline.step(InputRecord(stream, stream, 0, offset, key, value))
    pipeline.apply(step)
    return step


def test_fuzz_hundred_thousand_mutated_payloads_never_raise() -> None:
    """100,000 seeded mutations: no exception escapes, every refusal is a dead letter
    with a published reason (or `processing_error:<class>`) and the exact bytes."""
    rng = random.Random(20261201)
    valid = _valid_records(seed=3)
    engine = PartitionEngine(EngineConfig(partitions=PARTITIONS), 0)
    states = DictStates()
    reasons: collections.Counter[str] = collections.Counter()
    applied = 0
    for offset in range(FUZZ_CASES):
        stream, event = valid[offset % len(valid)]
        target = (
            rng.choice(["clickstream", "orders", "ad-impressions"])
            if rng.random() < 0.1
            else stream
        )
        value = _mutate(rng, stream, event)
        outcome = _handle(engine, states, target, offset, value)
        if outcome.reason is None:
            applied += 1
            continue
        reasons[outcome.reason] += 1
        known = outcome.reason in REASONS or outcome.reason == "future_timestamp"
        assert known or outcome.reason.startswith("processing_error:"), outcome.reason
        (send,) = outcome.emissions
        assert send.topic == "dead-letter"
        assert dict(send.headers)["reason"] == outcome.reason.encode()
        letter = msgspec.json.decode(send.value, type=DeadLetter)
        raw = (
            letter.payload.encode()
            if letter.payload_encoding == "utf-8"
            else base64.b64decode(letter.payload)
        )
        assert raw == (value or b"")
        assert (letter.source_topic, letter.source_offset) == (target, offset)
    # Every family of poison was met, and valid records kept flowing between them.
    for reason in ("too_deep", "empty_value", "not_json", "future_timestamp", "wrong_type"):
        assert reasons[reason] > 0, reasons
    assert applied > FUZZ_CASES // 4, (applied, reasons)
    # The domain itself does not fail on any of these (no processing_error at all).
    assert not [r for r in reasons if r.startswith("processing_error:")], reasons


class _Exploding(PartitionEngine):
    def process(self, *args: Any, **kwargs: Any) -> Any:
        raise OverflowError("math range error")


def test_an_exception_in_processing_is_a_dead_letter_and_drops_the_cached_state() -> None:
    engine = _Exploding(EngineConfig(partitions=PARTITIONS), 0)
    value = orjson.dumps({"event_id": "e", "ts": 1_700_000_000_000, "user_id": "u",
                          "type": "view", "item_id": "i"})  # fmt: skip
    states = DictStates()
    outcome = _pipeline(engine, states).step(
        InputRecord("clicks-topic", "clickstream", 0, 7, b"u", value)
    )
    assert outcome.reason == "processing_error:OverflowError"
    assert outcome.evict == "u" and outcome.state is None
    letter = msgspec.json.decode(outcome.emissions[0].value, type=DeadLetter)
    assert letter.payload.encode() == value
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        "clicks-topic",
        0,
        7,
    )
    assert letter.error == "OverflowError: math range error"


def _view(ts: int, user: str = "u1", item: str = "i1", n: int = 0) -> ClickEvent:
    return ClickEvent(event_id=f"e{ts}-{n}", ts=ts, user_id=user, type="view", item_id=item,
                      category="c")  # fmt: skip


T0 = 1_700_000_000_000


def test_a_far_future_event_is_refused_and_changes_nothing() -> None:
    engine = PartitionEngine(EngineConfig(partitions=1), 0)
    state = engine.process("clickstream", _view(T0), None, 0).state
    before = msgspec.json.encode(state)
    result = engine.process("clickstream", _view(T0 + YEAR_MS), state, 1)
    assert result.refused == "future_timestamp"
    assert msgspec.json.encode(result.state) == before and not result.outputs
    assert engine.attribution.max_ts == T0, "the watermark was not dragged"
    later = engine.process("clickstream", _view(T0 + 60_000, item="i2"), state, 2)
    assert later.refused is None and later.state.profile.totals == {"view": 2}


def test_events_within_the_skew_are_accepted() -> None:
    engine = PartitionEngine(EngineConfig(partitions=1, max_future_skew_ms=DAY_MS), 0)
    engine.process("clickstream", _view(T0), None, 0)
    assert engine.process("clickstream", _view(T0 + DAY_MS - 1), None, 1).refused is None


def test_without_a_clock_a_run_of_future_events_is_a_jump_in_history() -> None:
    """A replay whose history has a gap of more than the skew: after `future_quorum`
    refusals in a row the partition moves on, instead of refusing forever."""
    engine = PartitionEngine(EngineConfig(partitions=1, future_quorum=5), 0)
    engine.process("clickstream", _view(T0), None, 0)
    later = [engine.process("clickstream", _view(T0 + 3 * DAY_MS + i, n=i), None, i + 1)
             for i in range(8)]  # fmt: skip
    assert [r.refused for r in later] == ["future_timestamp"] * 5 + [None] * 3


def test_with_a_clock_a_stale_watermark_never_refuses_current_events() -> None:
    """Live: after an outage longer than the skew, events near the wall clock pass at
    once, while one a year ahead of the clock is still refused."""
    now = T0 + 10 * DAY_MS
    engine = PartitionEngine(EngineConfig(partitions=1), 0, now_getter=lambda: now)
    engine.process("clickstream", _view(T0), None, 0)
    assert engine.process("clickstream", _view(now - 1000), None, 1).refused is None
    assert (
        engine.process("clickstream", _view(now + YEAR_MS), None, 2).refused == "future_timestamp"
    )


@pytest.mark.parametrize("gap_years", [1, 30, 80])
def test_forward_decay_survives_events_years_apart(gap_years: int) -> None:
    """2**((ts - origin) / half_life) overflowed for a view a year ahead (issue #12);
    the origin is re-based instead, and old scores fade to zero without dividing by it."""
    r = Recommender(neighbors=10, lookback=3, covis_half_life=3 * 3600_000,
                    trending_half_life=3600_000, max_items=1000)  # fmt: skip
    r.observe_session(["a", "b", "c"], "cat", T0)
    t1 = T0 + gap_years * YEAR_MS
    r.observe_session(["x", "y"], "cat", t1)
    items, _ = r.recommend(["x"], {"cat": 1.0}, exclude={"x"}, k=3)
    assert items and items[0].item_id == "y"
    assert all(0 <= i.score < float("inf") for i in items)
    # and back in time again: weights underflow to zero, nothing raises
    r.observe_session(["p", "q"], "cat", T0)
    assert r.recommend(["p"], {"cat": 1.0}, exclude=set(), k=3)[0]


def test_an_engine_survives_events_decades_apart() -> None:
    engine = PartitionEngine(EngineConfig(partitions=1, future_quorum=1), 0)
    state = None
    for i, ts in enumerate(
        [T0, T0 + 1000, T0 + 40 * YEAR_MS, T0 + 40 * YEAR_MS + 5, T0 + 80 * YEAR_MS]
    ):
        result = engine.process(
            "clickstream", _view(min(ts, 4_000_000_000_000), item=f"i{i}"), state, i
        )
        state = result.state
    assert state is not None


def test_partition_of_the_fuzz_user_is_the_single_partition() -> None:
    # The fuzz uses one partition so that every decodable record reaches the engine.
    assert partition_for(b"any", PARTITIONS) == 0
