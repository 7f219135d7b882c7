"""Top-K recommendations: co-visitation, category affinity, trending fallback.

Users see these lists on the site. They must rank what was viewed together first,
never push an item the user just bought or is looking at, fall back sensibly for
cold users, stay within bounded memory, be rate limited per user in event time, and
be a pure function of the event sequence (replays and reprocessing agree).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from online_models.config import HOUR_MS, MINUTE_MS, EngineConfig
from online_models.engine import PartitionEngine, Result
from online_models.events import ClickEvent, OrderEvent, OrderItem
from online_models.outputs import Recommendation, RecommendedItem
from online_models.recommend import Recommender
from online_models.state import UserState
from online_models.toplist import TopList

T0 = 1_700_000_000_000


def pairs(result: tuple[list[RecommendedItem], str]) -> tuple[list[tuple[str, float]], str]:
    items, strategy = result
    return [(i.item_id, i.score) for i in items], strategy


RECOMMENDER_KW: dict[str, Any] = {
    "neighbors": 10,
    "lookback": 3,
    "covis_half_life": HOUR_MS,
    "trending_half_life": HOUR_MS,
    "max_items": 1000,
}


def recommender(**over: Any) -> Recommender:
    return Recommender(**{**RECOMMENDER_KW, **over})


class Shop:
    """One partition engine plus the per-user state a caller keeps."""

    def __init__(self, **cfg: Any) -> None:
        self.engine = PartitionEngine(EngineConfig(partitions=1, **cfg), 0)
        self.states: dict[str, UserState] = {}
        self.n = 0

    def send(self, source: str, ev: Any) -> Result:
        result = self.engine.process(source, ev, self.states.get(ev.user_id))
        self.states[ev.user_id] = result.state
        return result

    def view(self, user: str, item: str, ts: int, category: str | None = None) -> Result:
        self.n += 1
        return self.send(
            "clickstream",
            ClickEvent(
                event_id=f"e{self.n}",
                ts=ts,
                user_id=user,
                type="view",
                item_id=item,
                category=category,
            ),
        )

    def buy(self, user: str, item: str, ts: int) -> Result:
        self.n += 1
        return self.send(
            "orders",
            OrderEvent(
                order_id=f"o{self.n}",
                ts=ts,
                user_id=user,
                items=[OrderItem(item_id=item, quantity=1, price=10.0)],
            ),
        )


def recs(result: Result) -> list[list[str]]:
    return [[i.item_id for i in o.items] for o in result.outputs if isinstance(o, Recommendation)]


# Ranking ----------------------------------------------------------------------------


def test_covisitation_ranks_co_viewed_items_first() -> None:
    """After sessions a->b (3x) and a->c (1x), a user on `a` is offered b, then c, and
    only then the globally most popular z: scores b = 1 + 0.05 * 3/50 = 1.003,
    c = 1/3 + 0.05 * 1/50 = 0.334333, z = 0.05 (trending weight)."""
    r = recommender()
    for _ in range(3):
        r.observe_session(["a", "b"], None, T0)
    r.observe_session(["a", "c"], None, T0)
    for _ in range(50):
        r.observe_item("z", None, T0)
    items, strategy = r.recommend(["a"], {}, exclude={"a"}, k=3)
    assert [(i.item_id, i.score) for i in items] == [("b", 1.003), ("c", 0.334333), ("z", 0.05)]
    assert strategy == "covisitation"


def test_more_recent_history_weighs_more() -> None:
    """Of the user's last items, the most recent one's neighbours rank first (weight
    1/(1+rank)): after viewing p then q, q's neighbour beats p's."""
    r = recommender()
    r.observe_session(["p", "p_next"], None, T0)
    r.observe_session(["q", "q_next"], None, T0)
    items, _ = r.recommend(["p", "q"], {}, exclude={"p", "q"}, k=2)
    assert [i.item_id for i in items] == ["q_next", "p_next"]


def test_category_affinity_blends_with_trending() -> None:
    """toys item t1 is 5x as popular as books item b1. A books lover gets b1 first
    (0.3 * 1 + 0.05 * 0.2 = 0.31 vs 0.05); a user without affinity gets t1 first; an
    even books/toys affinity blends to t1 0.2 vs b1 0.16."""
    r = recommender()
    for _ in range(10):
        r.observe_item("t1", "toys", T0)
    for _ in range(2):
        r.observe_item("b1", "books", T0)
    assert pairs(r.recommend([], {"books": 1.0}, set(), 3)) == (
        [("b1", 0.31), ("t1", 0.05)],
        "affinity",
    )
    assert pairs(r.recommend([], {}, set(), 3)) == ([("t1", 0.05), ("b1", 0.01)], "trending")
    assert pairs(r.recommend([], {"books": 1.0, "toys": 1.0}, set(), 3)) == (
        [("t1", 0.2), ("b1", 0.16)],
        "affinity",
    )


def test_nothing_known_gives_no_recommendation() -> None:
    """An empty catalogue yields [] and strategy 'none' (the engine then emits nothing)."""
    assert recommender().recommend(["a"], {"x": 1.0}, set(), 5) == ([], "none")


def test_trending_fallback_for_cold_user() -> None:
    """A brand-new user viewing a never-seen, uncategorised item gets the trending list
    (strategy 'trending'); with a category on that view, strategy 'affinity'. Either
    way the cold user is not left without recommendations. ("You may also like"
    setting, so the exact list leaves out the item being viewed.)"""
    shop = Shop(rec_allow_seen=0)
    for k in range(5):
        shop.view(f"fan{k}", "hit", T0 + k * 1000)
    shop.view("fan9", "other", T0 + 6000)
    later = T0 + 70_000
    out = shop.view("cold", "brand_new", later)
    (rec,) = [o for o in out.outputs if isinstance(o, Recommendation)]
    assert [i.item_id for i in rec.items] == ["hit", "other"]
    assert rec.strategy == "trending"
    out = shop.view("cold2", "brand_new2", later + 1000, category="misc")
    (rec,) = [o for o in out.outputs if isinstance(o, Recommendation)]
    assert rec.strategy == "affinity"
    assert rec.items[0].item_id == "hit"


# Exclusions -------------------------------------------------------------------------


def _catalogue(shop: Shop, ts: int) -> None:
    """Other users view y then x (so x is y's co-visit) and x is the hit item."""
    for k in range(6):
        shop.view(f"other{k}", "y", ts + k * 2000)
        shop.view(f"other{k}", "x", ts + k * 2000 + 1000)
        shop.view(f"other{k}", "w", ts + k * 2000 + 1500)


def test_item_currently_viewed_is_never_recommended() -> None:
    """With rec_allow_seen=0 ("you may also like"), a user looking at x is not
    recommended x, even though x is the top trending item and co-visited with what
    they saw before."""
    shop = Shop(rec_allow_seen=0)
    _catalogue(shop, T0)
    shop.view("u", "y", T0 + 60_000)
    out = shop.view("u", "x", T0 + 120_000)
    (items,) = recs(out)
    assert "x" not in items and items
    assert shop.engine.recommender.trending_items(1) == ["x"]


def test_purchased_items_excluded_within_window_then_allowed_again() -> None:
    """A user who bought x within exclude_purchased_ms never gets x recommended (not on
    the order itself, not on later views), although x is the hit item and y's co-visit;
    once the window has passed, x is recommended again."""
    shop = Shop(exclude_purchased_ms=HOUR_MS)
    _catalogue(shop, T0)
    bought = T0 + 60_000
    seen: list[list[str]] = recs(shop.buy("u", "x", bought))
    for k in range(1, 20):  # views for the rest of the hour
        seen += recs(shop.view("u", "y" if k % 2 else "w", bought + k * 3 * MINUTE_MS))
    assert len(seen) >= 10
    assert all("x" not in items for items in seen)
    after = recs(shop.view("u", "y", bought + HOUR_MS + MINUTE_MS))
    assert after and "x" in after[0]


# Rate limit --------------------------------------------------------------------------


def test_at_most_one_recommendation_per_rec_interval_of_event_time() -> None:
    """Views every 5 s for 2 minutes with rec_interval 30 s give recommendations at 0,
    30, 60, 90 and 120 s only: output volume per user is bounded in event time, not in
    wall-clock time, so a replay at any speed emits the same lists."""
    shop = Shop(rec_interval_ms=30_000)
    _catalogue(shop, T0 - 60_000)
    at = [t for t in range(0, 121_000, 5000) if recs(shop.view("u", f"i{t}", T0 + t))]
    assert at == [0, 30_000, 60_000, 90_000, 120_000]
    assert shop.states["u"].rec_times[-1] == T0 + 120_000
    # Another view 5 s after the last recommendation gets none.
    assert recs(shop.view("u", "gap", T0 + 125_000)) == []  # 5 s after the one at 120 s
    # A late (older) event does not produce a recommendation either.
    assert recs(shop.view("u", "late", T0 + 10_000)) == []


# Bounded memory -----------------------------------------------------------------------


def test_max_items_pruning_keeps_the_most_popular_half() -> None:
    """When more than max_items are known, the recommender keeps the max_items // 2 most
    popular and forgets the rest everywhere (popularity, categories, co-visits,
    trending), so the catalogue in memory is bounded. Item k was seen k + 1 times, so
    the 11th item (seen once) triggers a prune to i5..i9 and is itself the weakest."""
    r = recommender(max_items=10)
    for k in range(10):
        for _ in range(k + 1):
            r.observe_item(f"i{k}", "cat", T0)
    r.observe_pair(["i0"], "i9", T0)
    r.observe_pair(["i9"], "i8", T0)
    assert len(r.popularity) == 10
    r.observe_item("i10", "cat", T0)
    assert sorted(r.popularity) == ["i5", "i6", "i7", "i8", "i9"]
    assert set(r.trending) <= set(r.popularity)
    assert set(r.category_top["cat"]) <= set(r.popularity)
    assert set(r.category_of) == set(r.popularity)
    assert "i0" not in r.covis and "i9" in r.covis
    for k in range(200):
        r.observe_item(f"new{k}", "cat", T0 + k)
        assert len(r.popularity) <= 10


def test_covisitation_rows_bounded_by_twice_neighbors() -> None:
    """A row of co-visits never holds more than 2 * neighbors items, however many items
    were seen next to it; the strongest neighbour is kept."""
    r = recommender(neighbors=3)
    rng = random.Random(0)
    for step in range(500):
        r.observe_pair([f"n{rng.randrange(100)}", "star"], "a", T0 + step)
        assert all(len(row) <= 6 for row in r.covis.values())
    assert "star" in r.covis["a"]
    assert max(r.covis["a"], key=r.covis["a"].__getitem__) == "star"


def test_second_hop_reaches_items_never_seen_with_the_latest_one() -> None:
    """a was seen with b twice, b with c once: from a, the second hop reads b's list
    (a 2, c 1) scaled to b's peak and weighed by b's share of a's peak (2 / 2):
    a 1.0, c 0.5; c was never seen with a. With one hop only b's first neighbour
    counts, so `hops` bounds the reads."""
    r = recommender()
    r.observe_pair(["a"], "b", T0)
    r.observe_pair(["a"], "b", T0)
    r.observe_pair(["b"], "c", T0)
    scores: dict[str, float] = {}
    r.add_covisitation_2hop("a", 5, scores, 1.0)
    assert scores == {"a": 1.0, "c": 0.5}
    assert r.second_hop("a", 5) == {"a", "c"}
    scores = {}
    r.add_covisitation_2hop("unknown", 5, scores, 1.0)
    assert scores == {}


def test_sorted_covisits_are_what_the_rows_rebuild() -> None:
    """The per-item sorted co-visits (what a recommendation reads) always equal the
    strongest `top_neighbors` of the row, through trims, a re-based decay origin and
    a restore from the snapshot (which carries only the rows)."""
    r = recommender(neighbors=3, top_neighbors=4)
    rng = random.Random(1)
    ts = T0
    for step in range(600):
        ts += 50 * HOUR_MS if step == 300 else rng.randrange(0, 3) * 1000  # ties, a rebase
        previous = [f"i{rng.randrange(40)}" for _ in range(rng.randint(1, 3))]
        r.observe_pair(previous, f"i{rng.randrange(40)}", ts)
        r.observe_item(previous[0], None, ts)
    rebuilt = {i: TopList(4, row).to_state() for i, row in r.covis.items()}
    assert {i: t.to_state() for i, t in r.covis_top.items()} == rebuilt
    assert all(len(t) <= 4 for t in r.covis_top.values())
    restored = Recommender.from_state(
        r.to_state(), **{**RECOMMENDER_KW, "neighbors": 3, "top_neighbors": 4}
    )
    for item in sorted(r.covis)[:10]:
        a: dict[str, float] = {}
        b: dict[str, float] = {}
        r.add_covisitation([item], a, 1.0)
        r.add_covisitation_2hop(item, 3, a, 0.5)
        restored.add_covisitation([item], b, 1.0)
        restored.add_covisitation_2hop(item, 3, b, 0.5)
        assert list(a.items()) == list(b.items())


# Determinism --------------------------------------------------------------------------


def _feed_random(r: Recommender, seed: int) -> list[Any]:
    rng = random.Random(seed)
    out = []
    for step in range(400):
        ts = T0 + step * 700
        items = [f"i{rng.randrange(30)}" for _ in range(rng.randint(1, 4))]
        r.observe_session(items, rng.choice(["a", "b", None]), ts)
        if step % 10 == 0:
            out.append(r.recommend(items, {"a": rng.random(), "b": rng.random()}, {items[-1]}, 10))
    return out


def test_same_sequence_gives_identical_lists() -> None:
    """Two recommenders fed the same sequence return identical lists (items, scores,
    strategies): a replay reproduces the live recommendations exactly."""
    assert _feed_random(recommender(), 3) == _feed_random(recommender(), 3)


def test_ties_are_broken_stably() -> None:
    """Items with equal scores come out in the same order every time, from fresh
    recommenders and from repeated calls (no dependence on set or hash order)."""
    lists = []
    for _ in range(3):
        r = recommender()
        for item in ["m", "c", "x", "b"]:
            r.observe_session(["a", item], None, T0)
        lists.append(r.recommend(["a"], {}, {"a"}, 4))
        lists.append(r.recommend(["a"], {}, {"a"}, 4))
    first_items, _ = lists[0]
    assert len({i.score for i in first_items}) == 1  # a genuine four-way tie
    assert all(lst == lists[0] for lst in lists)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_is_a_prefix_of_a_longer_list(k: int) -> None:
    """top-k is a prefix of top-(k+n), ties included: replays that compute @20 and cut
    back to top_k write the same lists as a run with top_k itself."""
    r = recommender()
    for item in ["m", "c", "x", "b"]:
        r.observe_session(["a", item], None, T0)
    r.observe_session(["a", "c"], None, T0)
    short, _ = r.recommend(["a"], {}, {"a"}, k)
    full, _ = r.recommend(["a"], {}, {"a"}, 10)
    assert full[:k] == short
