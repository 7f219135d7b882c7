"""Shared knowledge: compact serialisable updates, the event-time delay buffer, JSON
snapshots, and partitions that learn from each other."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from backtest.synthetic import campaigns, generate
from online_models.config import EngineConfig
from online_models.decode import decode_dict
from online_models.events import Campaign
from online_models.knowledge import SharedKnowledge
from online_models.knowledge_updates import (
    UPDATES_VERSION,
    BidValue,
    BuyerRfm,
    Example,
    ItemSeen,
    Revisit,
    SessionClick,
    Spend,
    Transition,
    decode_updates,
    encode_updates,
)
from online_models.runner import Runner

T0 = 1_700_000_000_000


def every_kind() -> list[Any]:
    return [
        ItemSeen("a", "shoes", T0, 1.0),
        Transition("a", "b", T0 + 1, 1),
        SessionClick("u1#1", "b", T0 + 1),
        Revisit(1, T0 + 1),
        Example("click", True, {"bias": 1.0, "h12": 1.0}, "c1", T0 + 2),
        Spend("c1", T0 + 3, 0.5),
        BidValue("c1", T0 + 4, 0.02),
        BuyerRfm(0.1, 2.0, 4.5, T0 + 5),
    ]


def test_updates_travel_as_versioned_json_arrays() -> None:
    """Every kind encodes to plain JSON (a tagged array, no pickle) and decodes equal."""
    ups = every_kind()
    raw = encode_updates(ups)
    doc = orjson.loads(raw)
    assert doc["v"] == UPDATES_VERSION and [u[0] for u in doc["updates"]] == [
        "item", "next", "sess", "revisit", "label", "spend", "value", "rfm"
    ]  # fmt: skip
    assert decode_updates(raw) == ups
    assert len(raw) < 340


def test_updates_become_visible_after_the_delay_in_event_time_order() -> None:
    k = SharedKnowledge(EngineConfig(knowledge_delay_ms=10_000))
    k.submit([ItemSeen("late", None, T0 + 5_000, 1.0)], now=T0 + 5_000)
    k.submit([ItemSeen("early", None, T0, 1.0)], now=T0 + 6_000)
    assert k.trending_items(5) == [] and len(k.pending) == 2
    k.advance(T0 + 10_000)
    assert k.trending_items(5) == ["early"]
    k.advance(T0 + 15_000)
    assert sorted(k.trending_items(5)) == ["early", "late"] and k.applied == 2


def test_snapshot_round_trip_keeps_pending_updates() -> None:
    k = SharedKnowledge(EngineConfig(knowledge_delay_ms=60_000))
    k.submit(every_kind(), now=T0 + 5)
    k.apply(every_kind())
    clone = SharedKnowledge.from_state(
        orjson.loads(orjson.dumps(k.to_state())), cfg=EngineConfig(knowledge_delay_ms=60_000)
    )
    assert orjson.dumps(clone.to_state()) == orjson.dumps(k.to_state())
    for kn in (k, clone):
        kn.advance(T0 + 120_000)
    assert orjson.dumps(clone.to_state()) == orjson.dumps(k.to_state())
    assert clone.pending == [] and clone.applied == 16


def test_partitions_learn_from_each_other() -> None:
    """With one shared knowledge every partition serves what all partitions learned:
    the same stream gives the same recommendations at 1 and 4 partitions."""
    events = [(t, decode_dict(t, e)) for t, e in generate(n_users=150, duration_s=3600, seed=3)]

    def recs(partitions: int) -> list[tuple[str, list[str]]]:
        r = Runner(EngineConfig(partitions=partitions))
        for c in campaigns(3):
            r.set_campaign(msgspec.convert(c, Campaign))
        out = []
        for topic, ev in events:
            for o in r.feed(topic, ev).outputs:
                if hasattr(o, "items"):
                    out.append((o.event_id, [i.item_id for i in o.items]))
        assert len(r.knowledges) == 1
        return out

    one, four = recs(1), recs(4)
    assert len(one) > 100 and one == four
