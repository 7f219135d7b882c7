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
