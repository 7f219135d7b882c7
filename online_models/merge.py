"""One partition's input topics merged in event time, as the replay merges its files.

A user's clicks, orders and impressions travel on three topics, and Kafka orders a
partition's records only within one topic. A live consumer reads the three in whatever
order its fetches return, so without a merge one user's order could be applied before
the click that led to it, and the live worker's outputs would differ from the replay's
event-time merge of the same history. `EventTimeMerge` holds each (stream, partition)
queue in offset order and releases, per partition, the head with the smallest
`order_key` - but only while every other stream of that partition either has a head to
compare with, has nothing more to deliver right now (caught up), or has kept the
partition waiting `max_idle_ms` of wall time (Kafka Streams' `max.task.idle.ms`: a
silent topic must not stop the others).

Records are never reordered within one (stream, partition) queue, so offsets are still
finished in order (the commit guard relies on it), and a record that cannot be decoded
waits in its queue like any other (it takes the time of the record before it).

>>> clock = [0]
>>> m = EventTimeMerge(["clickstream", "orders"], max_idle_ms=100, now_getter=lambda: clock[0])
>>> m.add("clickstream", 0, 0, 2_000, "click@2s")
>>> m.ready(0, caught_up=lambda stream: False)   # orders may still bring something earlier
[]
>>> m.add("orders", 0, 0, 1_000, "order@1s")
>>> m.ready(0, caught_up=lambda stream: False)   # orders is empty again: the click waits
['order@1s']
>>> clock[0] = 150                               # ... at most max_idle_ms
>>> m.ready(0, caught_up=lambda stream: False)
['click@2s']
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from online_models.decode import CAMPAIGNS, CLICKSTREAM, IMPRESSIONS, ORDERS

T = TypeVar("T")

# Ties in event time: the impression before the click it led to, the click before the
# order. Campaign settings (no user) go first: they hold from their time on.
STREAM_RANK = {CAMPAIGNS: 0, IMPRESSIONS: 1, CLICKSTREAM: 2, ORDERS: 3}
EVENT_STREAMS = frozenset({IMPRESSIONS, CLICKSTREAM, ORDERS})  # merged in event time


def order_key(ts: int, stream: str) -> tuple[int, int]:
    """The order in which the worker and the replay apply events: event time, then the
    stream's rank (`STREAM_RANK`); within one stream, the input's own order (offsets,
    lines) breaks the remaining ties."""
    return ts, STREAM_RANK.get(stream, len(STREAM_RANK))


class EventTimeMerge(Generic[T]):
    """Per-partition k-way merge of input queues in event time.

    Parameters
    ----------
    streams
        The logical streams merged (each partition has one queue per stream).
    max_idle_ms
        Wall time a partition waits for an empty, not caught-up stream before it
        releases the others without it. 0 releases every record at once (no merge).
    now_getter
        The wall clock in ms (injected: tests and the replay pass their own).
    """

    def __init__(
        self, streams: Sequence[str], max_idle_ms: int, now_getter: Callable[[], int]
    ) -> None:
        self.streams = list(streams)
        self.max_idle_ms = max_idle_ms
        self.now_getter = now_getter
        self._queues: dict[int, dict[str, deque[tuple[int, int, T]]]] = {}
        self._last_ts: dict[tuple[str, int], int] = {}
        self._waiting_since: dict[int, int] = {}  # partition -> when a stream kept it waiting

    def add(self, stream: str, partition: int, offset: int, ts: int | None, item: T) -> None:
        """Queue `item`, the record at `offset` of (stream, partition), read in offset
        order. `ts` None: no event time (an undecodable record): its predecessor's."""
        key = (stream, partition)
        if ts is None:
            ts = self._last_ts.get(key, 0)
        else:
            self._last_ts[key] = ts
        queues = self._queues.get(partition)
        if queues is None:
            queues = self._queues[partition] = {s: deque() for s in self.streams}
        queues[stream].append((ts, offset, item))

    def ready(self, partition: int, caught_up: Callable[[str], bool]) -> list[T]:
        """Release what `partition` can apply now, in order. `caught_up(stream)`: True
        when that stream of this partition has nothing more to deliver right now."""
        queues = self._queues.get(partition)
        if not queues:
            return []
        out: list[T] = []
        while True:
            best: str | None = None
            best_key: tuple[int, int] | None = None
            for stream, q in queues.items():
                if q:
                    k = order_key(q[0][0], stream)
                    if best_key is None or k < best_key:
                        best, best_key = stream, k
            if best is None:
                self._waiting_since.pop(partition, None)
                return out
            if self.max_idle_ms > 0 and any(not q and not caught_up(s) for s, q in queues.items()):
                now = self.now_getter()
                since = self._waiting_since.setdefault(partition, now)
                if now - since < self.max_idle_ms:
                    return out
            else:
                self._waiting_since.pop(partition, None)
            out.append(queues[best].popleft()[2])

    def discard(self, stream: str, partition: int, offset: int) -> None:
        """Drop the held records of (stream, partition) from `offset` on (they are
        being read again)."""
        q = self._queues.get(partition, {}).get(stream)
        if q:
            kept = [held for held in q if held[1] < offset]
            q.clear()
            q.extend(kept)

    def partitions(self) -> list[int]:
        """Partitions holding records."""
        return [p for p, qs in self._queues.items() if any(qs.values())]

    def held(self) -> int:
        """Records held in all queues."""
        return sum(len(q) for qs in self._queues.values() for q in qs.values())

    def forget(self, partitions: set[int]) -> None:
        """Drop what is held for `partitions` (revoked: their new owner reads them)."""
        for p in partitions:
            self._queues.pop(p, None)
            self._waiting_since.pop(p, None)
        for key in [k for k in self._last_ts if k[1] in partitions]:
            del self._last_ts[key]
