"""The bounded, always-sorted top lists behind trending and per-category popularity:
they must equal a full sort of every score ever offered, or recommendations would
depend on which items happened to be dropped earlier."""

from __future__ import annotations

import random

from online_models.toplist import TopList


def test_matches_a_full_sort_under_growing_scores() -> None:
    """5,000 offers of forward-decayed (only growing) scores to 300 items, with ties:
    after every offer the list is exactly the best n of all scores, ties by item id."""
    rng = random.Random(11)
    top, truth = TopList(12), {}
    for step in range(5000):
        item = f"i{rng.randrange(300)}"
        truth[item] = truth.get(item, 0.0) + rng.choice([1.0, 2.0, 0.5])
        top.offer(item, truth[item])
        if step % 50 == 0:
            best = sorted(truth.items(), key=lambda kv: (-kv[1], kv[0]))[:12]
            assert top.ranked(12) == best
            assert set(top) == {i for i, _ in best}


def test_state_round_trip_and_rescale_keep_the_order() -> None:
    """to_state is in rank order (equal lists, equal bytes); a restored or rescaled
    list ranks the same items the same way."""
    top = TopList(3)
    for item, score in [("b", 2.0), ("a", 2.0), ("c", 5.0), ("d", 1.0)]:
        top.offer(item, score)
    assert list(top.to_state()) == ["c", "a", "b"]
    restored = TopList(3, top.to_state())
    assert restored.ranked(3) == top.ranked(3)
    top.scale(0.5)
    assert top.ranked(3) == [("c", 2.5), ("a", 1.0), ("b", 1.0)]
    top.keep({"a": 1, "c": 1})
    assert top.ranked(3) == [("c", 2.5), ("a", 1.0)]
