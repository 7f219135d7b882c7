"""Top-K recommendations: session co-visitation blended with category affinity, and
trending items as the fallback for cold users.

Scores decay with time by *forward decay*: an observation at time t adds
2**((t - origin) / half_life), so older observations weigh relatively less without
touching every stored score. Scores are rescaled when the weights grow large.

>>> r = Recommender(neighbors=10, lookback=3, covis_half_life=3600_000,
...                 trending_half_life=3600_000, max_items=1000)
>>> for ts, items in enumerate([["a", "b"], ["a", "b"], ["a", "c"]]):
...     r.observe_session(items, "cat", ts * 1000)
>>> [i for i, _ in r.recommend(["a"], {"cat": 1.0}, exclude={"a"}, k=2, now=5000)[0]]
['b', 'c']
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any

RESCALE_AT = 1e12
COVIS_WEIGHT, AFFINITY_WEIGHT, TRENDING_WEIGHT = 1.0, 0.3, 0.05
TOP_PER_CATEGORY = 50
TOP_AFFINITY = 20
TOP_TRENDING = 20
CACHE_MS = 60_000  # popularity lists may be a minute (of event time) stale


class ForwardDecay:
    """Maps time to an ever-growing weight; rescaled together with its scores."""

    def __init__(self, half_life: float, origin: int = 0) -> None:
        self.half_life = half_life
        self.origin = origin

    def weight(self, ts: int) -> float:
        return float(2.0 ** ((ts - self.origin) / self.half_life))


class Recommender:
    def __init__(
        self,
        neighbors: int,
        lookback: int,
        covis_half_life: float,
        trending_half_life: float,
        max_items: int,
    ) -> None:
        self.neighbors = neighbors
        self.lookback = lookback
        self.max_items = max_items
        self.covis_decay = ForwardDecay(covis_half_life)
        self.pop_decay = ForwardDecay(trending_half_life)
        self.covis: dict[str, dict[str, float]] = {}
        self.popularity: dict[str, float] = {}
        self.category_of: dict[str, str] = {}
        # Bounded candidates of the global and per-category top lists. Forward-decayed
        # scores only grow when an item is observed, so an item dropped here is put
        # back with its full score the next time it is seen: the top lists stay exact.
        self.trending: dict[str, float] = {}
        self.category_top: dict[str, dict[str, float]] = {}
        self.recommended: set[str] = set()
        self._cache_ts = -CACHE_MS
        self._cache_trending: list[tuple[str, float]] = []
        # category -> (event time computed, top list); recomputed only when the
        # category changed since and the cached list is older than CACHE_MS.
        self._cache_categories: dict[str, tuple[int, list[tuple[str, float]]]] = {}
        self._changed: set[str] = set()

    def _start(self, ts: int) -> None:
        if not self.covis_decay.origin:
            self.covis_decay.origin = self.pop_decay.origin = ts

    def observe_item(self, item: str, category: str | None, ts: int, weight: float = 1.0) -> None:
        """Count one interaction towards trending (popularity)."""
        self._start(ts)
        w = weight * self.pop_decay.weight(ts)
        score = self.popularity[item] = self.popularity.get(item, 0.0) + w
        _offer(self.trending, item, score, TOP_PER_CATEGORY)
        if category is not None:
            self.category_of[item] = category
        category = self.category_of.get(item)
        if category is not None:
            _offer(self.category_top.setdefault(category, {}), item, score, TOP_PER_CATEGORY)
            self._changed.add(category)
        if w > RESCALE_AT:
            self._rescale_popularity(ts)
        if len(self.popularity) > self.max_items:
            self._prune_items()

    def observe_pair(self, previous: Iterable[str], item: str, ts: int) -> None:
        """The user moved from `previous` items to `item`: count co-visits both ways."""
        self._start(ts)
        w = self.covis_decay.weight(ts)
        for other in previous:
            if other == item:
                continue
            for a, b in ((other, item), (item, other)):
                row = self.covis.setdefault(a, {})
                row[b] = row.get(b, 0.0) + w
                if len(row) > 2 * self.neighbors:
                    self._trim(row)
        if w > RESCALE_AT:
            self._rescale_covis(ts)

    def observe_session(self, items: list[str], category: str | None, ts: int) -> None:
        for i, item in enumerate(items):
            self.observe_item(item, category, ts)
            self.observe_pair(items[max(0, i - self.lookback) : i], item, ts)

    def _trim(self, row: dict[str, float]) -> None:
        _trim(row, self.neighbors)

    def _prune_items(self) -> None:
        keep = heapq.nlargest(
            self.max_items // 2, self.popularity.items(), key=lambda kv: (kv[1], kv[0])
        )
        self.popularity = dict(keep)
        self.category_of = {i: c for i, c in self.category_of.items() if i in self.popularity}
        self.covis = {i: row for i, row in self.covis.items() if i in self.popularity}
        self.trending = {i: v for i, v in self.trending.items() if i in self.popularity}
        self.category_top = {
            c: {i: v for i, v in top.items() if i in self.popularity}
            for c, top in self.category_top.items()
        }

    def _rescale_popularity(self, ts: int) -> None:
        f = 1.0 / self.pop_decay.weight(ts)
        self.pop_decay.origin = ts
        self.popularity = {i: v * f for i, v in self.popularity.items()}
        self.trending = {i: v * f for i, v in self.trending.items()}
        self.category_top = {
            c: {i: v * f for i, v in top.items()} for c, top in self.category_top.items()
        }

    def _rescale_covis(self, ts: int) -> None:
        f = 1.0 / self.covis_decay.weight(ts)
        self.covis_decay.origin = ts
        for row in self.covis.values():
            for k in row:
                row[k] *= f

    def recommend(
        self, recent: list[str], affinity: Mapping[str, float], exclude: set[str], k: int, now: int
    ) -> tuple[list[tuple[str, float]], str]:
        """Top-k (item, score) for a user, and the strategy that produced the top item."""
        scores: dict[str, float] = {}
        get = scores.get
        for rank, item in enumerate(reversed(recent[-self.lookback :])):
            row = self.covis.get(item)
            if row:
                scale = COVIS_WEIGHT / max(row.values()) / (1 + rank)
                for other, v in row.items():
                    scores[other] = get(other, 0.0) + v * scale
        covis_items = set(scores)
        self._refresh(now)
        total_aff = sum(affinity.values())
        if total_aff > 0:
            for category, aff in sorted(affinity.items(), key=_by_score)[:3]:
                scale = AFFINITY_WEIGHT * aff / total_aff
                for item, pop in self._cached_category(category, now):
                    scores[item] = get(item, 0.0) + scale * pop
        for item, pop in self._cache_trending:
            scores[item] = get(item, 0.0) + TRENDING_WEIGHT * pop
        for item in exclude:
            scores.pop(item, None)
        # A stable C sort beats heapq.nlargest on a few hundred candidates; ties keep
        # insertion order, which is itself a function of the event sequence.
        ranked = sorted(scores.items(), key=_score, reverse=True)[:k]
        if not ranked:
            return [], "none"
        strategy = (
            "covisitation"
            if ranked[0][0] in covis_items
            else ("affinity" if total_aff > 0 else "trending")
        )
        self.recommended.update(i for i, _ in ranked)
        return [(i, round(s, 6)) for i, s in ranked], strategy

    def _refresh(self, now: int) -> None:
        # Top lists are re-read at most once per second of event time: cheap, and
        # still a pure function of the event sequence, so replays stay identical.
        if now - self._cache_ts >= CACHE_MS:
            self._cache_ts = now
            self._cache_trending = _normalised(self.trending, TOP_TRENDING)

    def _cached_category(self, category: str, now: int) -> list[tuple[str, float]]:
        cached = self._cache_categories.get(category)
        if cached is not None and (category not in self._changed or now - cached[0] < CACHE_MS):
            return cached[1]
        self._changed.discard(category)
        top = _normalised(self.category_top.get(category, {}), TOP_AFFINITY)
        self._cache_categories[category] = (now, top)
        return top

    def trending_items(self, k: int) -> list[str]:
        """The k most popular items now (the popularity baseline of backtests)."""
        return [i for i, _ in _normalised(self.trending)[:k]]

    def coverage(self) -> float:
        return len(self.recommended) / len(self.popularity) if self.popularity else 0.0

    def to_state(self) -> dict[str, Any]:
        return {
            "covis_origin": self.covis_decay.origin,
            "pop_origin": self.pop_decay.origin,
            "covis": self.covis,
            "popularity": self.popularity,
            "category_of": self.category_of,
            "trending": self.trending,
            "category_top": self.category_top,
            # The caches are part of the state: a restored engine must serve the same
            # (possibly a minute stale) lists as the one that wrote the snapshot.
            "cache_ts": self._cache_ts,
            "cache_trending": self._cache_trending,
            "cache_categories": self._cache_categories,
            "changed": sorted(self._changed),
        }

    def load_state(self, s: dict[str, Any]) -> None:
        self.covis_decay.origin = int(s["covis_origin"])
        self.pop_decay.origin = int(s["pop_origin"])
        self.covis = {i: {j: float(v) for j, v in row.items()} for i, row in s["covis"].items()}
        self.popularity = {i: float(v) for i, v in s["popularity"].items()}
        self.category_of = dict(s["category_of"])
        self.trending = {i: float(v) for i, v in s["trending"].items()}
        self.category_top = {
            c: {i: float(v) for i, v in top.items()} for c, top in s["category_top"].items()
        }
        self._cache_ts = int(s["cache_ts"])
        self._cache_trending = [(str(i), float(v)) for i, v in s["cache_trending"]]
        self._cache_categories = {
            c: (int(ts), [(str(i), float(v)) for i, v in top])
            for c, (ts, top) in s["cache_categories"].items()
        }
        self._changed = set(s["changed"])


def _offer(top: dict[str, float], item: str, score: float, n: int) -> None:
    """Record `item`'s score in a bounded candidate dict of the n best."""
    top[item] = score
    if len(top) > 2 * n:
        _trim(top, n)


def _trim(row: dict[str, float], n: int) -> None:
    keep = heapq.nlargest(n, row.items(), key=lambda kv: (kv[1], kv[0]))
    row.clear()
    row.update(keep)


_score = itemgetter(1)


def _by_score(kv: tuple[str, float]) -> tuple[float, str]:
    return (-kv[1], kv[0])


def _normalised(top: dict[str, float], n: int = TOP_PER_CATEGORY) -> list[tuple[str, float]]:
    ranked = sorted(top.items(), key=_score, reverse=True)[:n]
    peak = ranked[0][1] if ranked else 1.0
    return [(i, v / peak) for i, v in ranked]
