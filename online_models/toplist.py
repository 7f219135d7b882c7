"""A bounded top-n list kept sorted while its scores grow.

Popularity scores are forward-decayed: a score changes only when its item is
observed, and then only upwards. So an item that falls off the list is offered
again, with its full score, the next time it is seen, and the list is always the
exact top n; reading it costs a slice, never a sort.

>>> t = TopList(2)
>>> for item, score in [("a", 1.0), ("b", 3.0), ("c", 2.0), ("a", 5.0)]:
...     t.offer(item, score)
>>> t.ranked(2), sorted(t)
([('a', 5.0), ('b', 3.0)], ['a', 'b'])
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator, Mapping


class TopList:
    __slots__ = ("entries", "n", "scores")

    def __init__(self, n: int, scores: Mapping[str, float] | None = None) -> None:
        self.n = n
        # (-score, item), ascending: best first, ties by item id, so that the order
        # is a function of the scores alone.
        self.entries: list[tuple[float, str]] = []
        self.scores: dict[str, float] = {}
        if scores:
            self._rebuild(scores.items())

    def offer(self, item: str, score: float) -> None:
        entries = self.entries
        key = (-score, item)
        old = self.scores.get(item)
        if old is not None:
            del entries[bisect_left(entries, (-old, item))]
        elif len(entries) >= self.n and key >= entries[-1]:
            return
        insort(entries, key)
        self.scores[item] = score
        if len(entries) > self.n:
            del self.scores[entries.pop()[1]]

    def ranked(self, k: int) -> list[tuple[str, float]]:
        return [(item, -neg) for neg, item in self.entries[:k]]

    def to_state(self) -> dict[str, float]:
        """Scores in rank order, so equal lists serialise to equal bytes."""
        return {item: -neg for neg, item in self.entries}

    @classmethod
    def from_state(cls, state: Mapping[str, float], n: int) -> TopList:
        """The list of size `n` holding `state` (a `to_state()` value)."""
        return cls(n, state)

    def scale(self, factor: float) -> None:
        """Multiply every score; scores that underflow to zero leave the list."""
        self._rebuild([(i, v * factor) for i, v in self.scores.items() if v * factor > 0.0])

    def keep(self, items: Mapping[str, object]) -> None:
        self._rebuild([(i, v) for i, v in self.scores.items() if i in items])

    def _rebuild(self, pairs: Iterable[tuple[str, float]]) -> None:
        self.entries = sorted((-float(v), i) for i, v in pairs)[: self.n]
        self.scores = {i: -neg for neg, i in self.entries}

    def __contains__(self, item: object) -> bool:
        return item in self.scores

    def __iter__(self) -> Iterator[str]:
        return iter(self.scores)

    def __len__(self) -> int:
        return len(self.entries)
