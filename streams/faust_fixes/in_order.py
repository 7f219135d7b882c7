"""Each input partition is applied in offset order, reading skipped records again.

Works around faust-streaming 0.15.3 dropping records it fetched around a rebalance and
table recovery and going on from later offsets (measured: a restarted worker jumped from
offset 1 to 699; upstream faust-streaming/faust#216, closed for apps without tables).
Applying the later records first and the skipped ones after them would need every
state update to be independent of order, and idempotence to remember every offset: a
restarted worker's hole can span all records since the last commit. So a record past
a hole is skipped (the commit guard keeps the commit below the hole) and the partition
is sought back to it with the public `Consumer.seek`.

A seek can be undone: Faust drops every fetched record below the latest offset of the
batch it is draining, re-read ones included. So while a hole stays open, the seek is
repeated once per RESEEK_S: when records keep arriving past it, and from `reseek` (a
timer) when none come. A hole that does not refill within HOLE_GIVE_UP_S (offsets
deleted by retention) is given up.

Records that arrive while the tables are not ready (recovery_gate.py) are skipped the
same way, never held: the partition's next record or the timer reads them again once
the tables are ready (Faust itself seeks back to the committed offset after a
recovery, which the commit guard kept below them).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka.errors import IllegalStateError
from faust.types import TP

from streams.faust_fixes.commit_guard import CommitGuard
from streams.metrics import Metrics
from streams.ports import InputConsumer

log = logging.getLogger(__name__)
RESEEK_S = 1.0
HOLE_GIVE_UP_S = 60.0

Partition = tuple[str, int]


@dataclass
class Hole:
    """Offsets of a partition that have not reached the handler while later ones did."""

    offset: int  # the first missing offset
    since: float | None  # monotonic time it was first seen missing; None: tables not ready
    last_seek: float = -math.inf  # when the partition was last sought back to it


class InOrder:
    def __init__(
        self,
        guard: CommitGuard,
        metrics: Metrics,
        consumer: InputConsumer,
        is_ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.guard = guard
        self.metrics = metrics
        self.consumer = consumer
        self.is_ready = is_ready  # the tables are recovered (recovery_gate.py)
        self.holes: dict[Partition, Hole] = {}
        # Next offset to read per partition: past the processed run when the runtime
        # holds records in its event-time merge (admitted, not yet processed).
        self.read: dict[Partition, int] = {}

    async def admit(self, tp: Partition, offset: int) -> bool:
        """True when the record at `offset` is to be handled now; False when it is
        skipped, to be read again (tables not ready, or earlier offsets missing)."""
        if not self.is_ready():
            self._skip_unready(tp, offset)
            return False
        if await self._behind_hole(tp, offset):
            return False
        self.read[tp] = offset + 1
        return True

    def expected(self, tp: Partition) -> int | None:
        """The next offset of `tp` to admit (None: not tracked yet)."""
        return self.read.get(tp, self.guard.next.get(tp))

    def _skip_unready(self, tp: Partition, offset: int) -> None:
        # Recovery rewrites the tables and Faust seeks back to the committed offset:
        # read from the processed run again.
        self.read.pop(tp, None)
        expected = self.guard.next.get(tp)
        self.metrics.offset_jumps.labels(tp[0], "recovering").inc()
        log.info("%s[%d]@%d arrived while tables recover: read again once ready", *tp, offset)
        if expected is None or offset < expected:
            return  # not tracked yet (Faust seeks it after recovery) or already done
        hole = self.holes.get(tp)
        if hole is None or hole.offset != expected:
            hole = self.holes[tp] = Hole(expected, None)
        # No seek and no give-up clock while recovering (it can outlast HOLE_GIVE_UP_S):
        # the clock starts once the tables are ready.
        hole.since = None

    async def _behind_hole(self, tp: Partition, offset: int) -> bool:
        expected = self.expected(tp)
        if expected is None or offset <= expected:
            if expected is not None and offset < expected:
                # Faust re-sent a record (e.g. one handed over before its post-recovery
                # seek): applied again only if the user's state does not list it.
                self.metrics.offset_jumps.labels(tp[0], "rewind").inc()
                log.info("%s[%d]: offset %d, expected %d (rewind)", *tp, offset, expected)
            self.holes.pop(tp, None)
            return False
        self.metrics.offset_jumps.labels(tp[0], "gap").inc()
        now = time.monotonic()
        hole = self.holes.get(tp)
        if hole is None or hole.offset != expected:
            hole = self.holes[tp] = Hole(expected, now)
        elif hole.since is None:
            hole.since = now  # skipped while recovering: the tables are ready now
        elif now - hole.since > HOLE_GIVE_UP_S:
            # Offsets that never come back (deleted by retention, say): move on.
            log.error("%s[%d]: offsets %d..%d cannot be read; skipped", *tp, expected, offset - 1)
            self.metrics.offset_jumps.labels(tp[0], "lost").inc()
            self.guard.start(tp, offset)
            self.read.pop(tp, None)
            del self.holes[tp]
            return False
        await self._seek_back(tp, hole, now, f"offset {offset} arrived before them")
        return True

    async def reseek(self) -> None:
        """Seek again to holes that stay open (timer-driven). The last records past a
        hole can arrive within RESEEK_S of a seek that Faust then undoes; with nothing
        more arriving, no arrival would ever seek again and the hole would never fill."""
        if not self.is_ready():
            return  # Faust seeks to the committed offsets when recovery completes
        now = time.monotonic()
        for tp, hole in list(self.holes.items()):
            if hole.since is None:
                hole.since = now  # skipped while recovering: the tables are ready now
            await self._seek_back(tp, hole, now, "still missing")

    async def _seek_back(self, tp: Partition, hole: Hole, now: float, why: str) -> None:
        """Seek `tp` back to the hole, at most once per RESEEK_S."""
        if now - hole.last_seek < RESEEK_S:
            return
        hole.last_seek = now
        self.metrics.offset_jumps.labels(tp[0], "reread").inc()
        log.warning("%s[%d]: offsets from %d %s: reading them again", *tp, hole.offset, why)
        # A rebalance can revoke the partition between the hole being seen and this
        # seek; aiokafka raises for a partition not assigned or a negative offset, and
        # from the agent or the timer that would crash the worker. Its new owner reads
        # from the committed offset (kept below the hole), so nothing is lost.
        # (The consumer thread can change the assignment under the check: hence both.)
        if hole.offset < 0:
            skipped = "invalid offset"
        elif TP(*tp) not in self.consumer.assignment():
            skipped = "partition no longer assigned here"
        else:
            try:
                await self.consumer.seek(TP(*tp), hole.offset)
                return
            except (IllegalStateError, ValueError) as exc:
                skipped = repr(exc)
        log.warning("%s[%d]: seek to %d skipped: %s", *tp, hole.offset, skipped)
        self.holes.pop(tp, None)

    def rewind(self, partition: int) -> None:
        """Expect `partition`'s records again from the processed run on (what was read
        past it was not applied): the next record past it is a hole, read again."""
        self.read = {tp: o for tp, o in self.read.items() if tp[1] != partition}

    def forget(self, partitions: set[int]) -> None:
        self.holes = {tp: h for tp, h in self.holes.items() if tp[1] not in partitions}
        self.read = {tp: o for tp, o in self.read.items() if tp[1] not in partitions}
