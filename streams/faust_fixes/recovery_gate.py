"""Whether this app's tables may be read and written: no rebalance, no table recovery.

Records reach the agent while this is false, although Faust pauses the stream
partitions for a rebalance and its recovery (faust-streaming 0.15.3): the agent may
already hold the next record of its stream when a rebalance starts
(`app.on_rebalance_start` runs before `_on_partitions_revoked` clears the queues), and
between `Recovery.on_recovery_completed` resuming the stream partitions and
`app.on_rebalance_end` records are fetched again (upstream faust-streaming/faust#216 is
the same race without tables). `recovery.completed` alone is not enough: Faust sets it
after the first recovery and never clears it.

Such a record must not be held until recovery ends: Faust's rebalance waits, in
`Consumer.wait_empty`, for every record an agent took to be acked, so a held record
deadlocked the group until a time limit (`wait_empty: Waiting for tasks` every ~11 s for
2 minutes). It is skipped instead, unacknowledged by the commit guard, and read again
once the tables are ready (in_order.py). Only public attributes are read here.
"""

from __future__ import annotations

from typing import Any


def tables_ready(app: Any) -> bool:
    recovery = app.tables.recovery
    return bool(recovery.completed.is_set() and not recovery.in_recovery and not app.rebalancing)
