"""Never commit an input offset the agent has not processed.

Faust commits what it considers acked. Around table recovery it can ack records it
fetched but never handed to the agent (it clears its queues), and its check for
contiguous acks is skipped when the committed offset is 0; offsets were then committed
past records that no worker ever processed (measured here: a partition committed to 555
while its users' changelog held updates from 132 records). This guard tracks, per input
partition, the contiguous run of offsets the handler finished since the partition was
assigned, and clamps every commit to it: a record not processed is redelivered.

>>> g = CommitGuard()
>>> g.start(("t", 0), 40)            # the group's committed offset at assignment
>>> for offset in (40, 41, 43):      # 42 never reached the handler
...     g.processed(("t", 0), offset)
>>> g.clamp({("t", 0): 44, ("t", 1): 9})
{('t', 0): 42}
>>> g.hole(("t", 0))
42
>>> g.processed(("t", 0), 42)       # redelivered later
>>> g.clamp({("t", 0): 44})
{('t', 0): 44}
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

MAX_AHEAD = 100_000  # offsets remembered beyond a hole before the guard gives up on it


class CommitGuard:
    def __init__(self) -> None:
        self.next: dict[Hashable, int] = {}  # partition -> first offset not yet done
        self.ahead: dict[Hashable, set[int]] = {}  # done offsets beyond a hole

    def start(self, tp: Hashable, committed: int) -> None:
        """Track a newly assigned partition from the group's committed offset."""
        self.next[tp] = committed
        self.ahead.pop(tp, None)

    def processed(self, tp: Hashable, offset: int) -> None:
        nxt = self.next.get(tp)
        if nxt is None or offset < nxt:
            return
        ahead = self.ahead.setdefault(tp, set())
        ahead.add(offset)
        while nxt in ahead:
            ahead.discard(nxt)
            nxt += 1
        self.next[tp] = nxt
        if len(ahead) > MAX_AHEAD:  # a hole that never fills (e.g. a transaction marker)
            self.next[tp] = max(ahead) + 1
            ahead.clear()

    def hole(self, tp: Hashable) -> int | None:
        """The first offset not processed while later ones were, if any: records the
        consumer skipped, to be read again."""
        return self.next[tp] if self.ahead.get(tp) else None

    def clamp(self, offsets: Mapping[Any, int]) -> dict[Any, int]:
        """The commit Faust asked for, limited to what was processed; partitions not
        tracked (not assigned here) are left out."""
        out = {}
        for tp, offset in offsets.items():
            done = self.next.get(_key(tp))
            if done is not None:
                out[tp] = min(offset, done)
        return out

    def forget(self, partitions: set[int]) -> None:
        for tp in [tp for tp in self.next if _partition(tp) in partitions]:
            del self.next[tp]
            self.ahead.pop(tp, None)


def _key(tp: Any) -> Hashable:
    return (tp[0], tp[1]) if isinstance(tp, tuple) else (tp.topic, tp.partition)


def _partition(key: Hashable) -> int:
    return int(key[1])  # type: ignore[index]


def install_commit_guard(app: Any, guard: CommitGuard) -> None:
    consumer = app.consumer
    commit = consumer._commit

    async def guarded_commit(offsets: Mapping[Any, int]) -> bool:
        safe = guard.clamp(offsets)
        if not safe:
            return False
        return bool(await commit(safe))

    consumer._commit = guarded_commit
