"""Idempotence of the engine under redelivery: what makes at-least-once Kafka delivery
count every input exactly once in the profiles."""

from __future__ import annotations

import orjson
from test_domain_engine import NOON, impression, view

from online_models.config import EngineConfig
from online_models.engine import PartitionEngine
from online_models.outputs import Recommendation
from online_models.state import encode_state


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
    """Faust can hand over newer records before re-reading older ones it skipped, so a
    user's older, never-applied record may arrive after many newer ones: it must be
    applied, however many (here 200, once the cause of a SIGKILL-test loss with a
    64-offset window). Redelivered applied ones stay duplicates, and offsets below the
    partition's committed floor are duplicates and are forgotten by the state."""
    eng = PartitionEngine(EngineConfig(partitions=1), 0)
    state = eng.process("clickstream", view("u", NOON, "a"), None, offset=9).state
    for offset in range(300, 500):
        state = eng.process("clickstream", view("u", NOON + offset, "c"), state, offset).state
    late = eng.process("clickstream", view("u", NOON - 5000, "b"), state, offset=4)
    assert not late.duplicate and late.state.profile.totals == {"view": 202}
    state = late.state
    for offset in (4, 9, 300, 499):
        assert eng.process("clickstream", view("u", NOON, "a"), state, offset).duplicate
    assert eng.process("clickstream", view("u", NOON, "d"), state, offset=5, floor=400).duplicate
    state = eng.process("clickstream", view("u", NOON, "e"), state, offset=500, floor=400).state
    assert state.applied["clickstream"] == list(range(400, 501))
