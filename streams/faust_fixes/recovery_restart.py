"""Table recovery overtaken by a rebalance must start over, not seek with stale offsets.

Written for faust-streaming 0.15.3 (no upstream issue for this race; #54 / #57 fixed an
earlier crash of the same seek). Its `Recovery._restart_recovery`
waits for the active changelog partitions to catch up inside a `try/except Exception`
that also swallows the `RebalanceAgain` raised when a new rebalance arrives meanwhile.
The old pass then carries on as if recovery had finished: it pauses partitions, logs
"Recovery complete" and seeks the standby changelog partitions, but `on_rebalance` has
already replaced the standby set and offsets with the new generation's, whose start
offsets are not built yet (None). aiokafka refuses that seek with
`ValueError('Offset must be a positive integer')`. Usually the pending rebalance wins
the race and the error is dropped; when the seek fails first, the error escapes and
crashes the recovery service, and with it the worker (seen in a two-worker SIGKILL
storm; tests/test_rebalance_recovery.py produces the stale seek on most runs).

The guard makes the stale pass stop at its next step, as Faust intends: while a newer
rebalance is pending (`signal_recovery_start` set, cleared only when a pass begins),
seeking offsets or declaring recovery complete raises `RebalanceAgain`, which the
recovery loop answers by starting over with the new assignment. A seek offset that is
still missing or negative is skipped and logged rather than passed to aiokafka. It
replaces the private `Recovery._seek_offsets(consumer, tps, offsets, title)` and wraps
`Recovery.on_recovery_completed(generation_id)` on this app's recovery service, reading
`Recovery.signal_recovery_start`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from faust.tables.recovery import RebalanceAgain

log = logging.getLogger(__name__)


def seek_plan(offsets: Mapping[Any, int | None], tps: Any) -> tuple[dict[Any, int], list[Any]]:
    """Offsets to seek `tps` to, Faust's way (-1, "nothing read yet", means 0), and the
    partitions left out because their offset is missing or invalid.

    >>> seek_plan({"a": -1, "b": 7, "c": None, "d": -3}, ["a", "b", "c", "d"])
    ({'a': 0, 'b': 7}, ['c', 'd'])
    """
    plan: dict[Any, int] = {}
    skipped: list[Any] = []
    for tp in tps:
        offset = offsets.get(tp)
        if offset == -1:
            offset = 0
        if isinstance(offset, int) and offset >= 0:
            plan[tp] = offset
        else:
            skipped.append(tp)
    return plan, skipped


def install(app: Any) -> None:
    """Patch this app's table recovery (see module docstring)."""
    recovery = app.tables.recovery
    on_recovery_completed = recovery.on_recovery_completed

    def overtaken(step: str) -> None:
        if recovery.signal_recovery_start.is_set():
            log.info("table recovery overtaken by a rebalance before %s: starting over", step)
            raise RebalanceAgain()

    async def seek_offsets(consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        overtaken(f"seeking {title} changelog partitions")
        plan, skipped = seek_plan(offsets, sorted(tps))
        if skipped:
            log.error(
                "%s changelog partitions without a valid start offset, not sought: %s",
                title,
                {str(tp): offsets.get(tp) for tp in skipped},
            )
        if plan:
            await consumer.seek_wait(plan)

    async def completed(generation_id: int = 0) -> None:
        overtaken("completing")
        await on_recovery_completed(generation_id)

    recovery._seek_offsets = seek_offsets
    recovery.on_recovery_completed = completed
