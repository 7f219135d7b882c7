"""PartitionEngine snapshots: a restored engine (through JSON, user states through
their codec) prices, learns and recommends exactly as the original would have."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import orjson
from test_domain_engine import ENCODE, NOON, stream, view

from backtest.synthetic import campaigns
from online_models.config import EngineConfig
from online_models.engine import PartitionEngine
from online_models.events import Campaign, ClickEvent
from online_models.features import impression_features
from online_models.state import UserState, decode_state, encode_state


def _fork(
    eng: PartitionEngine, states: dict[str, UserState], cfg: EngineConfig
) -> tuple[PartitionEngine, dict[str, UserState]]:
    """Snapshot through JSON into a fresh engine; user states through their codec."""
    clone = PartitionEngine.from_state(
        orjson.loads(orjson.dumps(eng.to_state())),
        cfg=cfg,
        partition=eng.partition,
        campaigns=eng.campaigns,
    )
    clone_states = {u: decode_state(encode_state(s)) for u, s in states.items()}
    for u, s in clone_states.items():
        clone.touch(u, s.profile.last_seen)
    return clone, clone_states


def _run(eng: PartitionEngine, states: dict[str, UserState], events: Any) -> list[bytes]:
    out = []
    for topic, ev in events:
        res = eng.process(topic, ev, states.get(ev.user_id))
        states[ev.user_id] = res.state
        out.extend(ENCODE(o) for o in res.outputs)
    return out


def _split_run() -> tuple[PartitionEngine, dict[str, UserState], EngineConfig, Any, int]:
    cfg = EngineConfig(partitions=1)
    camps = {c["campaign_id"]: msgspec.convert(c, Campaign) for c in campaigns(3)}
    events = stream(250, 2, 5)
    split = len(events) // 2
    eng, states = PartitionEngine(cfg, 0, camps), {}
    _run(eng, states, events[:split])
    return eng, states, cfg, events, split


def test_engine_snapshot_round_trip() -> None:
    """to_state -> orjson -> PartitionEngine.from_state (user states through their
    codec): the restored engine has the same state, makes identical predictions, then
    emits identical bid adjustments, learns the same labels and ends in the same state
    as the original over the rest of the stream. A worker restored from a snapshot
    prices users exactly as the one that crashed would have."""
    eng, states, cfg, events, split = _split_run()
    assert eng.models.click.n_learned > 100
    clone, clone_states = _fork(eng, states, cfg)
    assert orjson.dumps(clone.to_state()) == orjson.dumps(eng.to_state())
    rng = random.Random(1)
    for user in rng.sample(sorted(states), 20):
        for cid, camp in eng.campaigns.items():
            x = impression_features(
                states[user].profile,
                camp,
                "top",
                {"device": "ios"},
                events[split][1].ts,
                cfg.hash_bits,
            )
            assert clone.models.predict(x) == eng.models.predict(x), (user, cid)
    rest = events[split:]
    expected = [o for o in _run(eng, states, rest) if b'"multiplier"' in o]
    assert len(expected) > 100
    assert [o for o in _run(clone, clone_states, rest) if b'"multiplier"' in o] == expected
    assert orjson.dumps(clone.to_state()) == orjson.dumps(eng.to_state())
    assert clone.models.click.n_learned == eng.models.click.n_learned


def test_engine_snapshot_round_trip_identical_outputs() -> None:
    """Restoring a mid-stream snapshot must not change any later output, recommendations
    included: replays and crash-recovered workers are expected to agree byte for byte."""
    eng, states, cfg, events, split = _split_run()
    clone, clone_states = _fork(eng, states, cfg)
    rest = events[split:]
    assert _run(clone, clone_states, rest) == _run(eng, states, rest)


def test_engine_snapshot_round_trip_inside_the_cache_window() -> None:
    """A snapshot taken shortly (event time) after the last top-list refresh must still
    restore an engine that emits the same recommendations as the original."""
    cfg = EngineConfig(partitions=1, rec_interval_ms=0)
    eng, states = PartitionEngine(cfg, 0), {}
    _run(eng, states, [("clickstream", view("u1", NOON, "a"))])  # refreshes the cache
    _run(eng, states, [("clickstream", view("u2", NOON + 100 + k, "b", n=k)) for k in range(3)])
    clone, clone_states = _fork(eng, states, cfg)
    nxt = [
        (
            "clickstream",
            ClickEvent(event_id="z", ts=NOON + 500, user_id="u3", type="view", item_id="z"),
        )
    ]
    assert _run(clone, clone_states, nxt) == _run(eng, states, nxt)
