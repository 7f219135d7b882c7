"""Next-item evaluation of recommendations, the way session-based recommenders are
measured, against a popularity baseline of the same run.

Every *position* (a user's item event at or after `evaluate_from`: a view, click,
wishlist or add-to-cart with an item, or a placed order) predicts the user's next
item event from the list the user **holds** at that moment: the latest non-empty
recommendation served to them (`serve`), or none, which is a miss. It is a hit@k when
the next event's item is among the first k items; MRR@k sums 1/rank for those hits
and divides by all positions. An order with several items is one event: hit when
any of its items is in the list, rank = the best rank among them. The baseline is
the popularity list at the position (`position(..., baseline)`).

A position whose user has no later item event by the end of the replay (the last
click of a session), or who expires first (the engine forgets users idle for the
profile TTL; `forget`), is counted as `unresolved` and left out of the rates. So
memory follows active users.

Each judged target is also classed as *seen* (the user had touched that item before,
in this replay) or *new*, with the hits@20 of each class: how much of the hit rate
is repeat consumption.

>>> ev = NextItemEval(bucket_ms=1000)
>>> ev.serve("u", ["a", "b", "c"])
>>> ev.position("u", 100, ["c", "a"])
>>> ev.observe("u", 200, ["b"])      # rank 2 for the engine, a miss for the baseline
>>> ev.position("v", 150, ["b"])     # v holds no list: a miss for the engine
>>> ev.observe("v", 300, ["b"])
>>> s = ev.summary()
>>> s["evaluated"], s["model"]["hit@10"], s["model"]["mrr@10"], s["baseline"]["hit@10"]
(2, 0.5, 0.25, 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CUTOFFS = (10, 20)
MAX_BUCKETS = 48
# Tally slots: positions, then per cutoff (hits, reciprocal-rank sum), for the model
# and for the baseline.
_SLOTS = 1 + 2 * 2 * len(CUTOFFS)
_NO_ITEMS: list[str] = []


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
        self.held: dict[str, list[str]] = {}  # user -> latest non-empty list served
        self.pending: dict[str, tuple[int, list[str], list[str]]] = {}
        self.touched: dict[str, set[str]] = {}  # user -> items of their item events
        self.buckets: dict[int, list[float]] = {}  # bucket start -> tallies
        self.served = 0
        self.positions = 0
        self.without_list = 0  # positions at which the user held no list
        self.forgotten = 0  # unresolved positions of users who expired
        # [positions, hits@20] for targets the user had touched before, and new ones
        self.seen = [0, 0]
        self.new = [0, 0]

    def serve(self, user_id: str, items: list[str]) -> None:
        """The user was served `items` (an empty list leaves the previous one held)."""
        self.served += 1
        if items:
            self.held[user_id] = items

    def position(self, user_id: str, ts: int, baseline: list[str]) -> None:
        """A position: the user's next item event judges the list held now."""
        held = self.held.get(user_id)
        if held is None:
            self.without_list += 1
            held = _NO_ITEMS
        self.positions += 1
        self.pending[user_id] = (ts, held, baseline)

    def observe(self, user_id: str, ts: int, item_ids: Sequence[str]) -> None:
        """A user's item event: judge their waiting position, then remember the items."""
        waiting = self.pending.pop(user_id, None)
        touched = self.touched.get(user_id)
        if waiting is not None:
            self._judge(waiting, item_ids, touched)
        if touched is None:
            touched = self.touched[user_id] = set()
        touched.update(item_ids)

    def _judge(
        self,
        waiting: tuple[int, list[str], list[str]],
        item_ids: Sequence[str],
        touched: set[str] | None,
    ) -> None:
        rec_ts, items, baseline = waiting
        start = rec_ts - rec_ts % self.bucket_ms
        tally = self.buckets.get(start)
        if tally is None:
            tally = self.buckets[start] = [0.0] * _SLOTS
        tally[0] += 1
        slot = 1
        model_rank = None
        for n, ranked in enumerate((items, baseline)):
            r = rank_of(ranked, item_ids)
            if n == 0:
                model_rank = r
            for k in CUTOFFS:
                if r is not None and r <= k:
                    tally[slot] += 1
                    tally[slot + 1] += 1.0 / r
                slot += 2
        kind = self.seen if touched and any(i in touched for i in item_ids) else self.new
        kind[0] += 1
        if model_rank is not None and model_rank <= max(CUTOFFS):
            kind[1] += 1

    def forget(self, user_id: str) -> None:
        """The user expired: their waiting position stays unresolved."""
        self.forgotten += self.pending.pop(user_id, None) is not None
        self.held.pop(user_id, None)
        self.touched.pop(user_id, None)

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
        k = max(CUTOFFS)
        hits = self.seen[1] + self.new[1]
        return {
            "recommendations": self.served,
            "positions": self.positions,
            "positions_without_list": self.without_list,
            "evaluated": int(total[0]),
            "unresolved": self.forgotten + len(self.pending),
            "model": self._rates(total, 1),
            "baseline": self._rates(total, base),
            "targets": {
                "seen": {"positions": self.seen[0], f"hits@{k}": self.seen[1]},
                "new": {"positions": self.new[0], f"hits@{k}": self.new[1]},
                f"share_of_hits@{k}_on_new": round(self.new[1] / hits, 6) if hits else None,
                f"hit@{k}_new": round(self.new[1] / self.new[0], 6) if self.new[0] else None,
            },
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
