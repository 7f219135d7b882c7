"""Idempotence of the engine under redelivery: what makes at-least-once Kafka delivery
count every input exactly once in the profiles."""

from __future__ import annotations

import orjson
from test_domain_engine import NOON, impression, view

from online_models.config import EngineConfig
from online_models.engine import PartitionEngine
from online_models.outputs import Recommendation
from online_models.state import APPLIED_KEPT, encode_state


def test_redelivered_offset_is_a_duplicate_with_no_effect() -> None:
    """Kafka redelivers after a crash. An offset already applied on the same source
    topic returns duplicate=True, emits nothing, and changes neither the user's state
    nor the engine's shared state; the same offset on another topic is new."""
    eng = PartitionEngine(EngineConfig(partitions=1), 0)
    eng.process("clickstream", view("other", NOON - 1000, "hit"), None, offset=1)
    first = eng.process("clickstream", view("u", NOON), None, offset=7)
    assert not first.duplicate
    assert [type(o) for o in first.outputs] == [Recommendation]  # the original did emit
    state_before = encode_state(first.state)
    engine_before = orjson.dumps(eng.to_state())
    for offset in (7,):
        again = eng.process("clickstream", view("u", NOON), first.state, offset=offset)
        assert again.duplicate
        assert again.outputs == [] and again.expired == [] and again.labels == 0
        assert encode_state(again.state) == state_before
        assert orjson.dumps(eng.to_state()) == engine_before
    other = eng.process("ad-impressions", impression("u", NOON + 1, 0.1), first.state, offset=7)
    assert not other.duplicate
    assert other.state.applied == {"clickstream": [7], "ad-impressions": [7]}


def test_out_of_order_redelivery_applies_what_was_never_applied() -> None:
    """Faust can hand over one record before seeking back to the committed offset, so a
    user's older, never-applied record may arrive after a newer one: it must be applied,
    not dropped as a duplicate. Once APPLIED_KEPT newer offsets are known, older ones are
    duplicates (the state cannot list every offset ever applied)."""
    eng = PartitionEngine(EngineConfig(partitions=1), 0)
    state = eng.process("clickstream", view("u", NOON, "a"), None, offset=9).state
    late = eng.process("clickstream", view("u", NOON - 5000, "b"), state, offset=4)
    assert not late.duplicate and late.state.profile.totals == {"view": 2}
    assert eng.process("clickstream", view("u", NOON, "a"), late.state, offset=9).duplicate
    state = late.state
    busy = state  # a busy user: 200 newer records applied before a skipped one is re-read
    for offset in range(10, 210):
        busy = eng.process("clickstream", view("u", NOON + offset, "c"), busy, offset).state
    assert not eng.process("clickstream", view("u", NOON, "b"), busy, offset=3).duplicate
    for offset in range(10, 10 + APPLIED_KEPT):
        state = eng.process("clickstream", view("u", NOON + offset, "c"), state, offset).state
    assert state.applied["clickstream"] == list(range(10, 10 + APPLIED_KEPT))
    assert eng.process("clickstream", view("u", NOON, "d"), state, offset=5).duplicate


def test_a_repartitioned_record_counts_once_however_many_copies_arrive() -> None:
    """A record keyed for the wrong partition is copied to the user's own partition.
    A crash between sending the copy and committing the original sends the copy again,
    at another offset: the copy names the original's place (`ecom-copy-of`) and the
    user's state applies each original once."""
    from online_models.partitioning import partition_for
    from online_models.pipeline import COPY_OF_HEADER, REPARTITION, InputRecord, Pipeline, copy_of

    cfg = EngineConfig(partitions=4)
    engines = {p: PartitionEngine(cfg, p) for p in range(4)}
    states: dict[int, dict[str, object]] = {p: {} for p in range(4)}
    knowledge = engines[0].knowledge
    for eng in engines.values():
        eng.knowledge = knowledge
    pipe = Pipeline(cfg, engines.__getitem__, states.__getitem__, lambda: knowledge)
    home = partition_for(b"u", 4)
    wrong = (home + 1) % 4
    raw = orjson.dumps({"event_id": "e1", "ts": NOON, "user_id": "u", "type": "view",
                        "item_id": "i1"})  # fmt: skip
    copies = []
    for _ in range(2):  # the original, delivered twice (a crash before its commit)
        step = pipe.step(InputRecord("clicks", "clickstream", wrong, 41, b"u", raw))
        [emission] = step.emissions
        assert emission.topic == REPARTITION and emission.partition == home
        assert emission.headers == [(COPY_OF_HEADER, f"{wrong}:41".encode())]
        copies.append(emission)
    for offset, emission in zip((7, 9), copies, strict=True):
        rec = InputRecord("clicks", "clickstream", home, offset, emission.key, emission.value,
                          copy_of(emission.headers))  # fmt: skip
        step = pipe.step(rec)
        pipe.apply(step)
    state = states[home]["u"]
    assert state.profile.totals == {"view": 1}  # type: ignore[attr-defined]
    assert state.applied == {f"clickstream<{wrong}": [41]}  # type: ignore[attr-defined]
    # A copy that is itself copied again names the first original, not itself.
    again = pipe.step(InputRecord("clicks", "clickstream", wrong, 3, b"u", raw, (2, 5)))
    assert again.emissions[0].headers == [(COPY_OF_HEADER, b"2:5")]
