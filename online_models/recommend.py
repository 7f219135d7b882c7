"""Item popularity (trending, per category) and symmetric co-visitation, and the
recommender built on them alone: session co-visitation blended with category affinity,
and trending items as the fallback for cold users. `online_models.blend` adds the
sequence-aware candidates (`online_models.sessions`) to these parts.

Scores decay with time by *forward decay*: an observation at time t adds
2**((t - origin) / half_life), so older observations weigh relatively less without
touching every stored score. Before a weight could grow large (or overflow, for an
event years after the origin), the origin is re-based to the event's time and the
stored scores are scaled down with it; scores that underflow to zero are dropped. The
trending and per-category top lists are kept sorted as they change (`TopList`), so
a recommendation reads current popularity without sorting it.

>>> r = Recommender(neighbors=10, lookback=3, covis_half_life=3600_000,
...                 trending_half_life=3600_000, max_items=1000)
>>> for ts, items in enumerate([["a", "b"], ["a", "b"], ["a", "c"]]):
...     r.observe_session(items, "cat", ts * 1000)
>>> items, strategy = r.recommend(["a"], {"cat": 1.0}, exclude={"a"}, k=2)
>>> [i.item_id for i in items], strategy
(['b', 'c'], 'covisitation')
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any

from online_models.outputs import RecommendedItem, round6
from online_models.snapshot import Restorable
from online_models.toplist import TopList

# Re-base once an observation would weigh more than 2**REBASE_AT_EXPONENT (~1e12):
# far below float overflow (2**1024), far above rounding trouble for stored scores.
REBASE_AT_EXPONENT = 40.0
COVIS_WEIGHT, AFFINITY_WEIGHT, TRENDING_WEIGHT = 1.0, 0.3, 0.05
TOP_PER_CATEGORY = 50
TOP_AFFINITY = 20
TOP_TRENDING = 20
TOP_COVIS = 20  # default strongest co-visits kept sorted per item
_NO_ITEMS: frozenset[str] = frozenset()


class ForwardDecay:
    """Maps time to an ever-growing weight; rescaled together with its scores."""

    def __init__(self, half_life: float, origin: int = 0) -> None:
        self.half_life = half_life
        self.origin = origin

    def weight(self, ts: int) -> float:
        """The weight of an observation at `ts`; call `rebase` first when `due(ts)`."""
        return float(2.0 ** ((ts - self.origin) / self.half_life))

    def due(self, ts: int) -> bool:
        """True when `ts` is so far past the origin that its weight must not be computed."""
        return (ts - self.origin) > REBASE_AT_EXPONENT * self.half_life

    def rebase(self, ts: int) -> float:
        """Move the origin to `ts`; returns the factor that brings stored scores along
        (it underflows to 0.0 for gaps of ~1000 half-lives, it never overflows)."""
        f = float(2.0 ** (-(ts - self.origin) / self.half_life))
        self.origin = ts
        return f


class Recommender(Restorable):
    def __init__(
        self,
        neighbors: int,
        lookback: int,
        covis_half_life: float,
        trending_half_life: float,
        max_items: int,
        top_neighbors: int = TOP_COVIS,
    ) -> None:
        self.neighbors = neighbors
        self.lookback = lookback
        self.max_items = max_items
        self.covis_decay = ForwardDecay(covis_half_life)
        self.pop_decay = ForwardDecay(trending_half_life)
        self.covis: dict[str, dict[str, float]] = {}
        # Per item its `top_neighbors` strongest co-visits, kept sorted as they grow:
        # the second hop (`add_covisitation_2hop`) reads them without sorting a row.
        self.top_neighbors = top_neighbors
        self.covis_top: dict[str, TopList] = {}
        self.popularity: dict[str, float] = {}
        self.category_of: dict[str, str] = {}
        self.trending = TopList(TOP_PER_CATEGORY)
        self.category_top: dict[str, TopList] = {}
        self.recommended: set[str] = set()

    def _start(self, ts: int) -> None:
        if not self.covis_decay.origin:
            self.covis_decay.origin = self.pop_decay.origin = ts

    def observe_item(self, item: str, category: str | None, ts: int, weight: float = 1.0) -> None:
        """Count one interaction towards trending (popularity)."""
        self._start(ts)
        if self.pop_decay.due(ts):
            self._rescale_popularity(ts)
        w = weight * self.pop_decay.weight(ts)
        score = self.popularity[item] = self.popularity.get(item, 0.0) + w
        self.trending.offer(item, score)
        if category is not None:
            self.category_of[item] = category
        else:
            category = self.category_of.get(item)
        if category is not None:
            top = self.category_top.get(category)
            if top is None:
                top = self.category_top[category] = TopList(TOP_PER_CATEGORY)
            top.offer(item, score)
        if len(self.popularity) > self.max_items:
            self._prune_items()

    def observe_pair(self, previous: Iterable[str], item: str, ts: int) -> None:
        """The user moved from `previous` items to `item`: count co-visits both ways."""
        self._start(ts)
        if self.covis_decay.due(ts):
            self._rescale_covis(ts)
        w = self.covis_decay.weight(ts)
        tops = self.covis_top
        for other in previous:
            if other == item:
                continue
            for a, b in ((other, item), (item, other)):
                row = self.covis.setdefault(a, {})
                v = row[b] = row.get(b, 0.0) + w
                top = tops.get(a)
                if top is None:
                    top = tops[a] = TopList(self.top_neighbors)
                top.offer(b, v)
                if len(row) > 2 * self.neighbors:
                    _trim(row, self.neighbors)
                    # From the trimmed row, so that the list is always what a restore
                    # rebuilds from the row (even when ties straddle the trim).
                    tops[a] = TopList(self.top_neighbors, row)

    def observe_session(self, items: list[str], category: str | None, ts: int) -> None:
        for i, item in enumerate(items):
            self.observe_item(item, category, ts)
            self.observe_pair(items[max(0, i - self.lookback) : i], item, ts)

    def _prune_items(self) -> None:
        keep = heapq.nlargest(
            self.max_items // 2, self.popularity.items(), key=lambda kv: (kv[1], kv[0])
        )
        self.popularity = dict(keep)
        self.category_of = {i: c for i, c in self.category_of.items() if i in self.popularity}
        self.covis = {i: row for i, row in self.covis.items() if i in self.popularity}
        self.covis_top = {i: t for i, t in self.covis_top.items() if i in self.covis}
        self.recommended &= self.popularity.keys()
        self.trending.keep(self.popularity)
        for top in self.category_top.values():
            top.keep(self.popularity)

    def _rescale_popularity(self, ts: int) -> None:
        f = self.pop_decay.rebase(ts)
        self.popularity = {i: v * f for i, v in self.popularity.items() if v * f > 0.0}
        self.trending.scale(f)
        for top in self.category_top.values():
            top.scale(f)

    def _rescale_covis(self, ts: int) -> None:
        f = self.covis_decay.rebase(ts)
        rows = (
            (i, {j: v * f for j, v in row.items() if v * f > 0.0}) for i, row in self.covis.items()
        )
        self.covis = {i: row for i, row in rows if row}
        self._rebuild_covis_top()

    def _rebuild_covis_top(self) -> None:
        """The sorted strongest co-visits of every row (after a rescale or a restore:
        the same lists the incremental offers keep, as row values only grow)."""
        n = self.top_neighbors
        self.covis_top = {i: TopList(n, row) for i, row in self.covis.items()}

    def recommend(
        self, recent: list[str], affinity: Mapping[str, float], exclude: set[str], k: int
    ) -> tuple[list[RecommendedItem], str]:
        """Top-k items for a user, and the strategy that produced the top item:
        co-visitation of the recent items, then category affinity and trending."""
        scores: dict[str, float] = {}
        self.add_covisitation(recent, scores, COVIS_WEIGHT)
        covis_items = set(scores) if scores else _NO_ITEMS
        has_affinity = self.add_affinity(affinity, scores, AFFINITY_WEIGHT)
        self.add_trending(scores, TRENDING_WEIGHT)
        for item in exclude:
            scores.pop(item, None)
        ranked = self.top(scores, k)
        if not ranked:
            return [], "none"
        top = ranked[0].item_id
        strategy = (
            "covisitation" if top in covis_items else ("affinity" if has_affinity else "trending")
        )
        return ranked, strategy

    def top(self, scores: dict[str, float], k: int) -> list[RecommendedItem]:
        """The k best of `scores`, as output items (and counted for coverage)."""
        # Sorting the bare scores (C, no key function) gives the k-th best; only the
        # items at or above it are then sorted, stably, so ties keep insertion order
        # (itself a function of the event sequence) exactly as a full sort would.
        if len(scores) > 2 * k:
            cut = sorted(scores.values(), reverse=True)[k - 1]
            ranked = sorted(
                [kv for kv in scores.items() if kv[1] >= cut], key=_score, reverse=True
            )[:k]
        else:
            ranked = sorted(scores.items(), key=_score, reverse=True)[:k]
        self.recommended.update([i for i, _ in ranked])
        return [RecommendedItem(i, round6(s)) for i, s in ranked]

    def add_covisitation(self, recent: list[str], scores: dict[str, float], weight: float) -> None:
        """Symmetric decayed co-visits of the latest `lookback` items: each item's
        `top_neighbors` strongest, scaled to its peak, and the item r steps back by 1/r.
        (Reading whole rows instead scored the same on the YOOCHOOSE validation day, at
        about three times the cost.)"""
        get = scores.get
        tops = self.covis_top
        for rank, item in enumerate(reversed(recent[-self.lookback :]), 1):
            top = tops.get(item)
            # A row of observations that decayed to nothing adds nothing.
            if top and top.entries[0][0] < 0.0:
                scale = weight / top.entries[0][0] / rank  # entries hold -score
                for neg, other in top.entries:
                    scores[other] = get(other, 0.0) + neg * scale

    def add_covisitation_2hop(
        self, item: str, hops: int, scores: dict[str, float], weight: float
    ) -> None:
        """Two hops of co-visitation: the strongest co-visits of `item`'s `hops`
        strongest co-visited items, each list scaled to its own peak and weighed by the
        first hop's share of `item`'s peak. It reaches items never seen with `item`
        itself: on the YOOCHOOSE validation day a third of the next clicks on items new
        to the session had no candidate from any other part."""
        tops = self.covis_top
        top = tops.get(item)
        if not top or top.entries[0][0] >= 0.0:
            return
        get = scores.get
        first = top.entries[0][0]
        for neg, other in top.entries[:hops]:
            second = tops.get(other)
            if not second or second.entries[0][0] >= 0.0:
                continue
            # Entries hold -score: f = weight x (v / item's peak) / (other's peak).
            f = weight * neg / first / second.entries[0][0]
            for neg2, item2 in second.entries:
                scores[item2] = get(item2, 0.0) + f * neg2

    def second_hop(self, item: str, hops: int) -> set[str]:
        """The items `add_covisitation_2hop` reads for `item` (explanations)."""
        tops = self.covis_top
        first = tops.get(item)
        found: set[str] = set()
        for _, other in first.entries[:hops] if first else ():
            second = tops.get(other)
            if second:
                found.update(second.scores)
        return found

    def add_affinity(
        self, affinity: Mapping[str, float], scores: dict[str, float], weight: float
    ) -> bool:
        """The popular items of the user's top 3 categories, by share of affinity, each
        list scaled to its peak; True when the user has any affinity."""
        total_aff = sum(affinity.values())
        if total_aff <= 0:
            return False
        tops = (
            affinity.items() if len(affinity) == 1 else sorted(affinity.items(), key=_by_score)[:3]
        )
        get = scores.get
        for category, aff in tops:
            top = self.category_top.get(category)
            if not top or top.entries[0][0] >= 0.0:  # empty, or only zero scores
                continue
            # Entries hold -score; each list is normalised by its own peak.
            scale = weight * aff / total_aff / top.entries[0][0]
            for neg, item in top.entries[:TOP_AFFINITY]:
                scores[item] = get(item, 0.0) + scale * neg
        return True

    def add_trending(self, scores: dict[str, float], weight: float) -> None:
        """The trending items, scaled to the most popular one."""
        trending = self.trending.entries
        if trending and trending[0][0] < 0.0:
            scale = weight / trending[0][0]
            get = scores.get
            for neg, item in trending[:TOP_TRENDING]:
                scores[item] = get(item, 0.0) + scale * neg

    def trending_items(self, k: int) -> list[str]:
        """The k most popular items now (the popularity baseline of backtests)."""
        return [item for _, item in self.trending.entries[:k]]

    def coverage(self) -> float:
        return len(self.recommended) / len(self.popularity) if self.popularity else 0.0

    def to_state(self) -> dict[str, Any]:
        return {
            "covis_origin": self.covis_decay.origin,
            "pop_origin": self.pop_decay.origin,
            "covis": self.covis,
            "popularity": self.popularity,
            "category_of": self.category_of,
            "trending": self.trending.to_state(),
            "category_top": {c: top.to_state() for c, top in self.category_top.items()},
        }

    def _restore(self, s: dict[str, Any]) -> None:
        self.covis_decay.origin = int(s["covis_origin"])
        self.pop_decay.origin = int(s["pop_origin"])
        self.covis = {i: {j: float(v) for j, v in row.items()} for i, row in s["covis"].items()}
        self._rebuild_covis_top()
        self.popularity = {i: float(v) for i, v in s["popularity"].items()}
        self.category_of = dict(s["category_of"])
        self.trending = TopList(TOP_PER_CATEGORY, s["trending"])
        self.category_top = {
            c: TopList(TOP_PER_CATEGORY, top) for c, top in s["category_top"].items()
        }


def _trim(row: dict[str, float], n: int) -> None:
    keep = heapq.nlargest(n, row.items(), key=lambda kv: (kv[1], kv[0]))
    row.clear()
    row.update(keep)


_score = itemgetter(1)


def _by_score(kv: tuple[str, float]) -> tuple[float, str]:
    return (-kv[1], kv[0])
