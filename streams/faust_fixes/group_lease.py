"""Whether this worker still holds its partitions: a lease renewed by the group protocol.

The broker fences a member out of its group once it has heard no heartbeat for the
session timeout; the member learns of it only at its next heartbeat or commit. A worker
paused past its session (SIGSTOP, a stalled VM, a long swap) resumes with records
already fetched, and Faust (faust-streaming 0.15.3 on aiokafka 0.14.0) hands them to
the agent before the consumer thread's next heartbeat says the partitions have moved:
their state went to the changelog and their outputs out after another worker owned the
partitions (issue 18: 4 of 66,750 profiles wrong). Transactions would fence such writes
at the broker, but the embedded broker refuses transactional producers, so the worker
fences itself: it applies records only while

- the latest successful heartbeat, or the latest completed group join, *began* less
  than the session timeout ago (the broker cannot have expired the session before
  then: it counts from when it received that request), and
- no rejoin is pending (a rebalance has begun: the partitions are about to be revoked).

aiokafka keeps the time of its last successful heartbeat in a local variable of
`GroupCoordinator._heartbeat_routine`, so `install` wraps two private coroutine
methods of this app's coordinator instance, `_do_heartbeat() -> bool` and
`_on_join_complete(...)`, and reads the private `_rejoin_needed_fut`; Faust reaches the
coordinator the same way (`AIOKafkaConsumerThread._ensure_consumer()._coordinator`).
tests/test_faust_fixes.py checks each of them.

>>> t = [0.0]
>>> lease = GroupLease(10.0, clock=lambda: t[0])
>>> lease.held()                 # never joined
False
>>> lease.renewed(0.5); t[0] = 9.0
>>> lease.held()
True
>>> t[0] = 10.6                  # 10.1 s since the last renewal began
>>> lease.held()
False
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

WRAPPED = "_ecom_lease_wrapped"


class GroupLease:
    def __init__(self, session_timeout_s: float, clock: Callable[[], float] = time.monotonic):
        self.session_timeout_s = session_timeout_s
        self.clock = clock
        self.renewed_at: float | None = None  # when the latest renewal's request began
        self.rejoin_pending: Callable[[], bool] = lambda: False

    def renewed(self, began_at: float) -> None:
        if self.renewed_at is None or began_at > self.renewed_at:
            self.renewed_at = began_at

    def held(self) -> bool:
        began = self.renewed_at
        if began is None or self.clock() - began >= self.session_timeout_s:
            return False
        return not self.rejoin_pending()

    def problem(self) -> str | None:
        """Why records may not be applied now, as a readiness reason; None: held."""
        began = self.renewed_at
        if began is None:
            return "not_in_group"
        age = self.clock() - began
        if age >= self.session_timeout_s:
            return f"group_session_lapsed:{age:.0f}s"
        return "rebalancing" if self.rejoin_pending() else None


def coordinator_of(app: Any) -> Any:
    """The running app's aiokafka group coordinator (None before the consumer starts)."""
    thread = getattr(app.consumer, "_thread", None)
    consumer = getattr(thread, "_consumer", None)
    return getattr(consumer, "_coordinator", None)


def bind(coordinator: Any, lease: GroupLease) -> None:
    """Renew `lease` from `coordinator`'s heartbeats and joins (once per coordinator)."""
    if getattr(coordinator, WRAPPED, False):
        return
    heartbeat = coordinator._do_heartbeat
    join_complete = coordinator._on_join_complete

    async def renewing_heartbeat() -> bool:
        began = lease.clock()
        ok = bool(await heartbeat())
        if ok:
            lease.renewed(began)
        return ok

    async def renewing_join_complete(*args: Any, **kwargs: Any) -> Any:
        began = lease.clock()
        result = await join_complete(*args, **kwargs)
        lease.renewed(began)
        return result

    coordinator._do_heartbeat = renewing_heartbeat
    coordinator._on_join_complete = renewing_join_complete
    lease.rejoin_pending = lambda: bool(coordinator._rejoin_needed_fut.done())
    setattr(coordinator, WRAPPED, True)


def install(app: Any, lease: GroupLease) -> None:
    """Bind the lease at the first assignment (the coordinator exists once the
    consumer has started); the join that produced it counts as the first renewal."""

    @app.on_partitions_assigned.connect
    async def bind_lease(sender: Any, assigned: Any, **kwargs: Any) -> None:
        coordinator = coordinator_of(app)
        if coordinator is not None and not getattr(coordinator, WRAPPED, False):
            bind(coordinator, lease)
            lease.renewed(lease.clock())
