"""Sequence-aware recommendations (issue 10): the next-item protocol on a hand-made
stream, the repeat setting, memory bounds, snapshots of the new knowledge, and the
quality goal on YOOCHOOSE at 4 and 16 partitions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from backtest.jsonl import write_events
from backtest.recbench import YOOCHOOSE, data_missing, measure, prepare_yoochoose
from backtest.replay import ReplayOptions, replay
from online_models.config import EngineConfig
from online_models.engine import PartitionEngine
from online_models.events import ClickEvent
from online_models.knowledge import SharedKnowledge
from online_models.knowledge_updates import Revisit, SessionClick, Transition
from online_models.runner import Runner
from online_models.sessions import RevisitStats, SequentialRules, SessionIndex
from online_models.state import UserState

T0 = 1_700_000_000_000
SEC = 1000

# Only the sequential rules, so that every list can be worked out by hand.
RULES_ONLY = {
    "rec_sr_prev_weight": 0.0,
    "rec_covis_weight": 0.0,
    "rec_knn_weight": 0.0,
    "rec_repeat_weight": 0.0,
    "rec_affinity_weight": 0.0,
    "rec_trending_weight": 0.0,
}


def view(user: str, item: str, ts: int, n: int) -> dict[str, Any]:
    return {
        "topic": "clickstream",
        "event_id": f"e{n}",
        "ts": ts,
        "user_id": user,
        "session_id": user,
        "type": "view",
        "item_id": item,
    }


def test_protocol_scores_every_position_by_hand(tmp_path: Path) -> None:
    """Training s1: a b, s2: a b, s3: a c; test (from T1) t1: a b c, t2: d a.

    Positions judged (t1 at a, t1 at b, t2 at d; the last click of a session has no
    next item, so it stays unresolved):
    * t1 after a: rules of a = {b: 2/3, c: 1/3} -> [b, c]; next b: rank 1.
    * t1 after b: b was never followed, the list served is empty, the user still
      holds [b, c]; next c: rank 2.
    * t2 after d: nothing known, no list held: a miss.
    HR@10 = HR@20 = 2/3, MRR = (1 + 1/2) / 3 = 0.5.
    Popularity at those positions (trending: a 4, b 2, c 1; then b 3; then c 2):
    [a, b, c] -> rank 2 for b; [a, b, c] -> rank 3 for c; [a, b, c, d] -> rank 1 for a.
    """
    t1 = T0 + 600 * SEC
    rows = [("s1", "a"), ("s1", "b"), ("s2", "a"), ("s2", "b"), ("s3", "a"), ("s3", "c")]
    events = [view(u, i, T0 + n * 10 * SEC, n) for n, (u, i) in enumerate(rows)]
    test = [("t1", "a"), ("t1", "b"), ("t1", "c"), ("t2", "d"), ("t2", "a")]
    events += [view(u, i, t1 + n * 10 * SEC, 100 + n) for n, (u, i) in enumerate(test)]
    path = tmp_path / "events.jsonl"
    write_events(path, events)
    report = replay([path], tmp_path / "r", ReplayOptions(domain=RULES_ONLY, evaluate_from=t1))
    recs = report["recommendations"]
    assert (recs["positions"], recs["evaluated"], recs["unresolved"]) == (5, 3, 2)
    assert recs["positions_without_list"] == 1
    assert recs["model"] == {
        "hit@10": pytest.approx(2 / 3, abs=1e-6),
        "mrr@10": pytest.approx(0.5, abs=1e-6),
        "hit@20": pytest.approx(2 / 3, abs=1e-6),
        "mrr@20": pytest.approx(0.5, abs=1e-6),
    }
    assert recs["baseline"]["hit@10"] == 1.0
    assert recs["baseline"]["mrr@10"] == pytest.approx((1 / 2 + 1 / 3 + 1) / 3, abs=1e-6)
    # t2's a was touched by t2 before? No: both judged targets of t1 and t2 are new.
    assert recs["targets"]["new"] == {"positions": 3, "hits@20": 2}
    assert report["performance"]["recommend_us"]["n"] == 5
    # Without --evaluate-from, the training positions are judged too.
    everything = replay([path], tmp_path / "all", ReplayOptions(domain=RULES_ONLY))
    assert everything["recommendations"]["evaluated"] == 3 + 3


def test_emitted_only_judges_the_latest_emitted_list(tmp_path: Path) -> None:
    """s1: a b, s2: c d, then u: a, c, d ten seconds apart. With the user holding only
    emitted recommendations (rate limit 30 s), u's position at c is judged against the
    list emitted at a ([b]): a miss; served at every position, u holds [d] there: a hit.
    s1 at a and s2 at c knew nothing yet (no list: misses), u at a ([b]) misses c."""
    rows = [("s1", "a", 0), ("s1", "b", 1), ("s2", "c", 2), ("s2", "d", 3)]
    rows += [("u", "a", 60), ("u", "c", 70), ("u", "d", 80)]
    events = [view(u, i, T0 + t * SEC, n) for n, (u, i, t) in enumerate(rows)]
    path = tmp_path / "events.jsonl"
    write_events(path, events)
    opts = ReplayOptions(domain=RULES_ONLY, every_position=False)
    emitted = replay([path], tmp_path / "e", opts)["recommendations"]
    served = replay([path], tmp_path / "s", ReplayOptions(domain=RULES_ONLY))["recommendations"]
    assert emitted["evaluated"] == served["evaluated"] == 4
    assert emitted["model"]["hit@20"] == 0.0
    assert served["model"]["hit@20"] == 0.25 and served["model"]["mrr@20"] == 0.25


def _engine(**over: Any) -> tuple[PartitionEngine, dict[str, UserState]]:
    return PartitionEngine(EngineConfig(partitions=1, **over), 0), {}


def _view(eng: PartitionEngine, states: dict[str, UserState], user: str, item: str, ts: int):
    ev = ClickEvent(event_id=f"{user}{ts}", ts=ts, user_id=user, type="view", item_id=item)
    r = eng.process("clickstream", ev, states.get(user))
    states[user] = r.state
    return r


@pytest.mark.parametrize("allow_seen", [1, 0, 2])
def test_repeat_setting_decides_whether_session_items_come_back(allow_seen: int) -> None:
    """Other users often view x twice in a row, then y. With rec_allow_seen=1 (next
    click) the item just viewed is recommended, first; with 0 (you may also like) no
    item of the session ever is; with 2 (related items) all but the one in view."""
    eng, states = _engine(rec_allow_seen=allow_seen)
    for k in range(20):
        for n, item in enumerate(("x", "x", "y")):
            _view(eng, states, f"o{k}", item, T0 + k * 100 * SEC + n * SEC)
    _view(eng, states, "u", "y", T0 + 3000 * SEC)
    _view(eng, states, "u", "x", T0 + 3001 * SEC)
    items, strategy = eng.recommend_now(states["u"], T0 + 3001 * SEC, "x")
    ids = [i.item_id for i in items]
    if allow_seen == 1:
        assert ids[0] == "x" and strategy == "repeat"
    elif allow_seen == 0:
        assert "x" not in ids and "y" not in ids
    else:
        assert "x" not in ids and ids[0] == "y"


def test_memory_bounds_hold_under_many_sessions() -> None:
    idx = SessionIndex(max_sessions=50, sessions_per_item=4, max_session_items=5, max_items=60)
    rules = SequentialRules(max_next=3, lookback=2, max_items=40)
    revisits = RevisitStats(max_distance=5)
    for s in range(1000):
        items = [f"i{(s * 7 + n * 13) % 300}" for n in range(12)]
        for n, item in enumerate(items):
            idx.observe(f"s{s}", item, T0 + s * 1000 + n)
            if n:
                rules.observe(items[n - 1], item, 1)
                rules.observe(items[n - 2], item, 2) if n > 1 else None
            revisits.observe(n % 7)
    assert len(idx.sessions) <= 50
    assert all(len(e[1]) <= 5 for e in idx.sessions.values())
    assert all(len(keys) <= 4 for keys in idx.by_item.values())
    assert len(idx.by_item) <= 60
    assert len(rules.rows) <= 40 and all(len(r) <= 2 * 3 for r in rules.rows.values())
    assert len(revisits.counts) == 6


def test_engine_config_bounds_reach_the_knowledge() -> None:
    cfg = EngineConfig(
        partitions=2, max_sessions=30, knn_sessions_per_item=3, max_session_items=4, sr_max_next=5
    )
    runner = Runner(cfg)
    for s in range(200):
        for n in range(10):
            runner.feed(
                "clickstream",
                ClickEvent(
                    event_id=f"{s}-{n}",
                    ts=T0 + s * 60 * SEC + n * SEC,
                    user_id=f"u{s}",
                    type="view",
                    item_id=f"i{(s * 3 + n * 11) % 97}",
                ),
            )
    recs = runner.knowledge.recs
    assert len(recs.index.sessions) <= 30
    assert all(len(e[1]) <= 4 for e in recs.index.sessions.values())
    assert all(len(k) <= 3 for k in recs.index.by_item.values())
    assert all(len(r) <= 10 for r in recs.rules.rows.values())


def test_snapshot_of_the_sequence_knowledge_round_trips_as_json() -> None:
    cfg = EngineConfig()
    k = SharedKnowledge(cfg)
    ups: list[Any] = []
    for s in range(5):
        prev = None
        for n, item in enumerate("abcab"[s:] + "d"):
            ts = T0 + s * 10_000 + n
            if prev is not None:
                ups.append(Transition(prev, item, ts, 1))
            ups.append(SessionClick(f"s{s}", item, ts))
            ups.append(Revisit(1 if item == prev else 0, ts))
            prev = item
    k.apply(ups)
    raw = orjson.dumps(k.to_state())  # plain JSON: no pickle anywhere
    clone = SharedKnowledge.from_state(orjson.loads(raw), cfg=cfg)
    assert orjson.dumps(clone.to_state()) == raw
    args = (["a", "b"], "me", T0 + 60_000, {}, set(), 10)
    assert clone.recommend(*args) == k.recommend(*args)
    assert k.recommend(*args)[0]


# Real data ------------------------------------------------------------------------

WHY = data_missing(YOOCHOOSE)


@pytest.fixture(scope="module")
def yoochoose_rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    if WHY is not None:
        pytest.skip(WHY)
    work = tmp_path_factory.mktemp("recs")
    events, split_ts = prepare_yoochoose(work)
    return [measure(events, work, "blend", {}, p, split_ts) for p in (4, 16)]


@pytest.mark.skipif(WHY is not None, reason=WHY or "")
def test_yoochoose_quality_at_4_and_16_partitions(yoochoose_rows: list[dict[str, Any]]) -> None:
    """Every next click of the test day (12,453 positions): the same figures at 4 and
    16 partitions (one shared knowledge), MRR@20 at the goal (0.38, above published
    V-SKNN .3669 and STAN .3727 on this dataset), HR@20 above published SR, SKNN and
    STAN (.6185 / .6428 / .6680), and far above popularity."""
    four, sixteen = yoochoose_rows
    assert four["positions"] == sixteen["positions"] > 12_000
    for m in ("hit@10", "hit@20", "mrr@10", "mrr@20"):
        assert four[m] == sixteen[m], (four, sixteen)
    assert four["hit@20"] >= 0.69 and four["mrr@20"] >= 0.38, four
    assert four["hit@20"] > 3 * four["pop hit@20"], four


@pytest.mark.skipif(WHY is not None, reason=WHY or "")
def test_yoochoose_goal(yoochoose_rows: list[dict[str, Any]]) -> None:
    """The goal of issue 10 on the test day, at 4 and 16 partitions alike: HR@20 >= 0.70
    and MRR@20 >= 0.38 (published V-SKNN .6883 / .3669, STAN .6680 / .3727), with
    settings chosen on the validation day only (docs/benchmarks.md)."""
    for row in yoochoose_rows:
        assert row["hit@20"] >= 0.70 and row["mrr@20"] >= 0.38, row


def test_sessions_older_than_the_max_age_leave_the_index() -> None:
    """A steady population makes new sessions every day: without an age bound the index
    fills up to max_sessions however old its sessions are (the soak's growth)."""
    day = 86_400_000
    idx = SessionIndex(
        max_sessions=10_000, sessions_per_item=4, max_session_items=5, max_items=60,
        max_age_ms=3 * day,
    )  # fmt: skip
    for d in range(30):
        for u in range(20):
            idx.observe(f"u{u}#{d}", f"i{(u + d) % 50}", d * day + u)
    horizon = 29 * day + 19 - 3 * day  # the latest update minus the max age
    assert all(ts >= horizon for ts, _ in idx.sessions.values())
    assert len(idx.sessions) == 3 * 20 + 1  # days 27-29, and day 26's last session
