"""Never commit an input offset the agent has not processed.

Works around faust-streaming 0.15.3 committing offsets past records no agent processed
(upstream: faust-streaming/faust#606 "Wrong offset commit in case of gaps", #216, and
#312 / #378 before them). Faust commits what it considers acked. Around table recovery
it can ack records it fetched but never handed to the agent (it clears its queues), and
its check for contiguous acks is skipped when the committed offset is 0; offsets were
then committed past records that no worker ever processed (measured here: a partition
committed to 555 while its users' changelog held updates from 132 records). This guard
tracks, per input partition, the contiguous run of offsets the handler finished since
the partition was assigned, and clamps every commit to it: a record not processed is
redelivered. (The runtime applies each partition in offset order, so a record past a
hole is not processed until the hole has been read again: see in_order.py.)

Faust offers no hook between "offsets to commit" and the commit itself, so `install`
wraps the private `Consumer._commit(offsets) -> bool` of this app's consumer (the
instance, not the class). The same wrapper counts commits that went through, which
replaced a second patch (of `app.tables.on_commit`).

>>> g = CommitGuard()
>>> g.start(("t", 0), 40)            # the group's committed offset at assignment
>>> for offset in (40, 41, 43):      # 42 never reached the handler: 43 does not count
...     g.processed(("t", 0), offset)
>>> g.clamp({("t", 0): 44, ("t", 1): 9})
{('t', 0): 42}
>>> for offset in (42, 43):          # read again, in order
...     g.processed(("t", 0), offset)
>>> g.clamp({("t", 0): 44})
{('t', 0): 44}
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any


class CommitGuard:
    def __init__(self) -> None:
        self.next: dict[Hashable, int] = {}  # partition -> first offset not yet done

    def start(self, tp: Hashable, committed: int) -> None:
        """Track a newly assigned partition from `committed` (the group's offset)."""
        self.next[tp] = committed

    def processed(self, tp: Hashable, offset: int) -> None:
        """The handler finished `offset`; only the next expected one moves the run on."""
        if self.next.get(tp) == offset:
            self.next[tp] = offset + 1

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


def _key(tp: Any) -> Hashable:
    return (tp[0], tp[1]) if isinstance(tp, tuple) else (tp.topic, tp.partition)


def _partition(key: Hashable) -> int:
    return int(key[1])  # type: ignore[index]


def install(app: Any, guard: CommitGuard, on_commit: Callable[[], None]) -> None:
    consumer = app.consumer
    commit = consumer._commit

    async def guarded_commit(offsets: Mapping[Any, int]) -> bool:
        safe = guard.clamp(offsets)
        if not safe:
            return False
        done = bool(await commit(safe))
        if done:
            on_commit()
        return done

    consumer._commit = guarded_commit
