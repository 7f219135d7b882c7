"""Next-item hit rate and MRR, computed by hand on tiny streams: every position is
judged by the user's next item event against the list the user holds then."""

from __future__ import annotations

import pytest

from backtest.nextitem import NextItemEval, rank_of

ITEMS = [f"i{n}" for n in range(1, 21)]  # rank r holds item i<r>


def at(ev: NextItemEval, user: str, ts: int, items: list[str], baseline: list[str]) -> None:
    """Serve `items` to the user, then make the moment a position."""
    ev.serve(user, items)
    ev.position(user, ts, baseline)


def test_rank_of_takes_the_best_rank_of_several_targets() -> None:
    assert rank_of(ITEMS, ["i7", "i3"]) == 3
    assert rank_of(ITEMS, ["x"]) is None


def test_hit_rate_and_mrr_at_10_and_20() -> None:
    ev = NextItemEval()
    at(ev, "u1", 0, ITEMS, ["i1"])
    ev.observe("u1", 5, ["i2"])  # rank 2
    at(ev, "u2", 0, ITEMS, ["i12"])
    ev.observe("u2", 5, ["i12"])  # rank 12: @20 only; baseline rank 1
    at(ev, "u3", 0, ITEMS, [])
    ev.observe("u3", 5, ["nope"])  # miss
    s = ev.summary()
    assert s["evaluated"] == 3 and s["unresolved"] == 0
    assert s["model"] == {
        "hit@10": pytest.approx(1 / 3, abs=1e-6),
        "mrr@10": pytest.approx(0.5 / 3, abs=1e-6),
        "hit@20": pytest.approx(2 / 3, abs=1e-6),
        "mrr@20": pytest.approx((0.5 + 1 / 12) / 3, abs=1e-6),
    }
    assert s["baseline"]["hit@10"] == pytest.approx(1 / 3, abs=1e-6)
    assert s["baseline"]["mrr@10"] == pytest.approx(1 / 3, abs=1e-6)


def test_a_position_without_a_list_is_a_miss_and_an_empty_list_keeps_the_held_one() -> None:
    ev = NextItemEval()
    ev.position("u", 0, [])  # nothing held yet
    ev.observe("u", 1, ["i1"])
    at(ev, "u", 2, ITEMS, [])
    ev.observe("u", 3, ["i4"])  # rank 4
    at(ev, "u", 4, [], [])  # served nothing: still holds ITEMS
    ev.observe("u", 5, ["i5"])  # rank 5
    s = ev.summary()
    assert (s["positions"], s["positions_without_list"], s["evaluated"]) == (3, 1, 3)
    assert s["model"]["hit@10"] == pytest.approx(2 / 3, abs=1e-6)
    assert s["model"]["mrr@10"] == pytest.approx((1 / 4 + 1 / 5) / 3, abs=1e-6)


def test_each_position_is_judged_by_the_next_item_event_only() -> None:
    ev = NextItemEval()
    ev.observe("u", 0, ["i1"])  # nothing pending: ignored
    at(ev, "u", 1, ITEMS, [])
    ev.observe("u", 3, ["i4"])  # rank 4
    ev.observe("u", 4, ["i1"])  # nothing left pending
    at(ev, "u", 5, ITEMS, [])  # never followed: unresolved
    s = ev.summary()
    assert (s["positions"], s["evaluated"], s["unresolved"]) == (2, 1, 1)
    assert s["model"]["hit@10"] == 1.0 and s["model"]["mrr@10"] == 0.25


def test_order_with_several_items_counts_once_with_its_best_rank() -> None:
    ev = NextItemEval()
    at(ev, "u", 0, ITEMS, [])
    ev.observe("u", 1, ["zz", "i5", "i2"])
    s = ev.summary()
    assert s["evaluated"] == 1 and s["model"]["mrr@10"] == 0.5


def test_targets_are_classed_seen_or_new_per_user() -> None:
    ev = NextItemEval()
    ev.observe("u", 0, ["i3"])  # u touched i3
    at(ev, "u", 1, ITEMS, [])
    ev.observe("u", 2, ["i3"])  # seen, hit
    at(ev, "u", 3, ITEMS, [])
    ev.observe("u", 4, ["zz"])  # new, miss
    at(ev, "v", 5, ITEMS, [])
    ev.observe("v", 6, ["i3"])  # new for v, hit
    t = ev.summary()["targets"]
    assert t["seen"] == {"positions": 1, "hits@20": 1}
    assert t["new"] == {"positions": 2, "hits@20": 1}
    assert t["share_of_hits@20_on_new"] == 0.5 and t["hit@20_new"] == 0.5


def test_hit_rate_per_time_bucket_by_position_time() -> None:
    ev = NextItemEval(bucket_ms=100)
    at(ev, "a", 10, ITEMS, [])
    ev.observe("a", 150, ["i1"])  # position in bucket 0, resolved later: still bucket 0
    at(ev, "b", 120, ITEMS, [])
    ev.observe("b", 130, ["x"])
    rows = ev.summary()["by_time"]
    assert [(r["start_ms"], r["n"], r["model"]["hit@10"]) for r in rows] == [
        (0, 1, 1.0),
        (100, 1, 0.0),
    ]
    assert ev.summary()["model"]["hit@10"] == 0.5


def test_long_replays_are_coarsened_to_few_buckets() -> None:
    ev = NextItemEval(bucket_ms=1)
    for t in range(500):
        at(ev, "u", t, ITEMS, [])
        ev.observe("u", t, ["i1"])
    rows = ev.summary()["by_time"]
    assert len(rows) <= 48 and sum(r["n"] for r in rows) == 500


def test_forgotten_users_stay_unresolved_and_free_their_memory() -> None:
    """When the engine expires a user, their waiting position is counted as unresolved
    and dropped with their held list and touched items: a later event of a new user
    with the same id does not judge it."""
    ev = NextItemEval()
    at(ev, "u", 0, ITEMS, [])
    at(ev, "v", 1, ITEMS, [])
    ev.forget("u")
    ev.observe("u", 5, ["i1"])
    assert "u" not in ev.pending and "u" not in ev.held
    s = ev.summary()
    assert (s["positions"], s["evaluated"], s["unresolved"]) == (2, 0, 2)
