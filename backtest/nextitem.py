"""Next-item evaluation of recommendations, against a popularity baseline.

Every recommendation emitted for a user waits for that user's next item event in
event time (a view, click, wishlist or add-to-cart with an item, or a placed order);
it is a hit@k when that event's item is among the first k recommended items. An
order with several items counts as one next event: hit when any of its items is in
the list, rank = the best rank among them. Several recommendations emitted before
the same next event are all judged by it. Recommendations with no later item event
by the end of the replay, or before their user's profile expires (the engine forgets
users idle for the profile TTL; `forget`), are counted as `unresolved` and left out
of the rates. So memory follows active users, not the number of recommendations.

The baseline is the partition's trending list at the moment of the recommendation,
without the item that triggered it (the engine excludes that item too).

>>> ev = NextItemEval(bucket_ms=1000)
>>> ev.recommend("u", 100, ["a", "b", "c"], ["c", "a"])
>>> ev.observe("u", 200, ["b"])      # rank 2 for the engine, a miss for the baseline
>>> s = ev.summary()
>>> s["model"]["hit@10"], s["model"]["mrr@10"], s["baseline"]["hit@10"]
(1.0, 0.5, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CUTOFFS = (10, 20)
MAX_BUCKETS = 48
# Tally slots: recommendations, then per cutoff (hits, reciprocal-rank sum), for the
# model and for the baseline.
_SLOTS = 1 + 2 * 2 * len(CUTOFFS)


def rank_of(items: Sequence[str], targets: Sequence[str]) -> int | None:
    """1-based best rank of any target in items, or None.

    >>> rank_of(["a", "b", "c"], ["z", "c", "b"]), rank_of(["a"], ["z"])
    (2, None)
    """
    best = None
    for t in targets:
        try:
            r = items.index(t) + 1
        except ValueError:
            continue
        if best is None or r < best:
            best = r
    return best


class NextItemEval:
    def __init__(self, bucket_ms: int = 3_600_000) -> None:
        self.bucket_ms = bucket_ms
        self.pending: dict[str, list[tuple[int, list[str], list[str]]]] = {}
        self.buckets: dict[int, list[float]] = {}  # bucket start -> tallies
        self.recommendations = 0
        self.forgotten = 0  # unresolved recommendations of users who expired

    def recommend(self, user_id: str, ts: int, items: list[str], baseline: list[str]) -> None:
        self.recommendations += 1
        self.pending.setdefault(user_id, []).append((ts, items, baseline))

    def observe(self, user_id: str, ts: int, item_ids: Sequence[str]) -> None:
        """A user's item event: resolve every recommendation waiting for it."""
        waiting = self.pending.pop(user_id, None)
        if not waiting:
            return
        for rec_ts, items, baseline in waiting:
            start = rec_ts - rec_ts % self.bucket_ms
            tally = self.buckets.get(start)
            if tally is None:
                tally = self.buckets[start] = [0.0] * _SLOTS
            tally[0] += 1
            slot = 1
            for ranked in (items, baseline):
                r = rank_of(ranked, item_ids)
                for k in CUTOFFS:
                    if r is not None and r <= k:
                        tally[slot] += 1
                        tally[slot + 1] += 1.0 / r
                    slot += 2

    def forget(self, user_id: str) -> None:
        """The user expired: their waiting recommendations stay unresolved."""
        self.forgotten += len(self.pending.pop(user_id, ()))

    @staticmethod
    def _rates(tally: Sequence[float], offset: int) -> dict[str, float | None]:
        n = tally[0]
        out: dict[str, float | None] = {}
        for j, k in enumerate(CUTOFFS):
            hits, rr = tally[offset + 2 * j], tally[offset + 2 * j + 1]
            out[f"hit@{k}"] = round(hits / n, 6) if n else None
            out[f"mrr@{k}"] = round(rr / n, 6) if n else None
        return out

    def summary(self) -> dict[str, Any]:
        total = [0.0] * _SLOTS
        for tally in self.buckets.values():
            total = [a + b for a, b in zip(total, tally, strict=True)]
        base = 1 + 2 * len(CUTOFFS)
        return {
            "recommendations": self.recommendations,
            "evaluated": int(total[0]),
            "unresolved": self.forgotten + sum(len(v) for v in self.pending.values()),
            "model": self._rates(total, 1),
            "baseline": self._rates(total, base),
            "by_time": [
                {
                    "start_ms": start,
                    "n": int(t[0]),
                    "model": self._rates(t, 1),
                    "baseline": self._rates(t, base),
                }
                for start, t in self._coarse()
            ],
        }

    def _coarse(self) -> list[tuple[int, list[float]]]:
        """Buckets merged pairwise until at most MAX_BUCKETS remain (long replays)."""
        if not self.buckets:
            return []
        width = self.bucket_ms
        first = min(self.buckets)
        while (max(self.buckets) - first) // width >= MAX_BUCKETS:
            width *= 2
        merged: dict[int, list[float]] = {}
        for start in sorted(self.buckets):
            key = first + (start - first) // width * width
            acc = merged.setdefault(key, [0.0] * _SLOTS)
            for i, v in enumerate(self.buckets[start]):
                acc[i] += v
        return sorted(merged.items())
