"""What `/healthz` and `/readyz` answer, decided from facts the runtime reports.

Kept apart from the web views and from Faust so that the rules can be tested on a
fake clock (`now_getter`), and so that the probes answer from one place.

Liveness (`/healthz`, a failing probe restarts the pod) fails only for what a restart
can cure: the processing agent has stopped and not come back, or it crashed
`crash_limit` times within `crash_window_s` (a crash loop). Readiness (`/readyz`,
a failing probe takes the pod out of service and pages nobody by itself) fails while
tables recover, while the worker is not a settled member of its group (joining,
rebalancing, or past its session: streams/faust_fixes/group_lease.py), while the
broker cannot be reached, and while an assigned partition has a backlog but has not
advanced for `stall_after_s`.

The broker counts as reached on any answer from it: the reachability probe, a record
fetched, a commit. It is called unreachable only when a probe has failed and nothing
has been heard from it since for `broker_timeout_s`; before the first answer, or when
no probe has completed for that long (an event loop too busy to run it, say during
table recovery), the reason says so (`broker_unchecked`) instead of blaming the broker.

>>> t = [0.0]
>>> h = Health(stall_after_s=30, now_getter=lambda: t[0])
>>> h.agent_started(); h.broker_reached()
>>> h.progress(("clickstream", 0), next_offset=10, end_offset=12)
>>> h.liveness(), h.readiness(recovering=False)
([], [])
>>> t[0] = 31.0; h.broker_reached()
>>> h.progress(("clickstream", 0), next_offset=10, end_offset=15)  # backlog, no progress
>>> h.readiness(recovering=False)
['stalled:clickstream[0]']
>>> Health(now_getter=lambda: 0.0).readiness(recovering=True, group="rebalancing")
['recovering', 'rebalancing', 'broker_unchecked:never']
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass
class _Partition:
    next_offset: int
    since: float  # when next_offset last changed
    lag: int = 0


class Health:
    """Probe answers from reported facts; each failing rule adds one reason string."""

    def __init__(
        self,
        stall_after_s: float = 120.0,
        broker_timeout_s: float = 15.0,
        crash_limit: int = 3,
        crash_window_s: float = 60.0,
        restart_grace_s: float = 30.0,
        now_getter: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stall_after_s = stall_after_s
        self.broker_timeout_s = broker_timeout_s
        self.crash_limit = crash_limit
        self.crash_window_s = crash_window_s
        self.restart_grace_s = restart_grace_s
        self.now = now_getter
        self.agent_running = False
        self.agent_stopped_at: float | None = None
        self.crashes: deque[float] = deque(maxlen=max(1, crash_limit))
        self.last_crash = ""
        self.broker_ok_at: float | None = None
        self.broker_error = ""
        self.partitions: dict[Hashable, _Partition] = {}

    # Facts ------------------------------------------------------------------------
    def agent_started(self) -> None:
        self.agent_running = True
        self.agent_stopped_at = None

    def agent_stopped(self, crash: BaseException | None = None) -> None:
        self.agent_running = False
        self.agent_stopped_at = self.now()
        if crash is not None:
            self.crashes.append(self.agent_stopped_at)
            self.last_crash = f"{type(crash).__name__}: {crash}"[:300]

    def broker_reached(self) -> None:
        self.broker_ok_at = self.now()
        self.broker_error = ""

    def broker_failed(self, error: str) -> None:
        self.broker_error = error[:300] or "error"

    def progress(self, tp: Hashable, next_offset: int, end_offset: int) -> None:
        """The partition's next offset to process and its log-end offset, now."""
        now = self.now()
        p = self.partitions.get(tp)
        if p is None or p.next_offset != next_offset:
            p = self.partitions[tp] = _Partition(next_offset, now)
        p.lag = max(0, end_offset - next_offset)

    def forget(self, keep: set[Hashable]) -> None:
        """Drop partitions no longer assigned."""
        self.partitions = {tp: p for tp, p in self.partitions.items() if tp in keep}

    # Answers ----------------------------------------------------------------------
    def liveness(self) -> list[str]:
        now = self.now()
        reasons = []
        recent = [t for t in self.crashes if now - t <= self.crash_window_s]
        if len(recent) >= self.crash_limit:
            reasons.append(f"crash_loop:{len(recent)} agent crashes in {self.crash_window_s:g}s")
        stopped = self.agent_stopped_at
        if not self.agent_running and stopped is not None and now - stopped > self.restart_grace_s:
            reasons.append("agent_stopped")
        return reasons

    def readiness(self, recovering: bool, group: str | None = None) -> list[str]:
        now = self.now()
        reasons = self.liveness()
        if recovering:
            reasons.append("recovering")
        if group:
            reasons.append(group)
        heard = self.broker_ok_at
        if heard is None or now - heard > self.broker_timeout_s:
            if self.broker_error:
                reasons.append(f"broker_unreachable:{self.broker_error}")
            else:
                since = "never" if heard is None else f"{now - heard:.0f}s"
                reasons.append(f"broker_unchecked:{since}")
        for tp, p in self._sorted():
            if p.lag > 0 and now - p.since > self.stall_after_s:
                reasons.append(f"stalled:{_name(tp)}")
        return reasons

    def report(self, recovering: bool, group: str | None = None) -> dict[str, object]:
        """The body of both probes: every reason, and the facts behind them."""
        now = self.now()
        reasons = self.readiness(recovering, group)  # liveness reasons included
        return {
            "live": not self.liveness(),
            "ready": not reasons,
            "reasons": reasons,
            "agent_running": self.agent_running,
            "recent_crashes": sum(1 for t in self.crashes if now - t <= self.crash_window_s),
            "last_crash": self.last_crash or None,
            "broker_seen_s_ago": None
            if self.broker_ok_at is None
            else round(now - self.broker_ok_at, 1),
            "lag": {_name(tp): p.lag for tp, p in self._sorted()},
        }

    def _sorted(self) -> list[tuple[Hashable, _Partition]]:
        return sorted(self.partitions.items(), key=lambda kv: str(kv[0]))


def _name(tp: Hashable) -> str:
    if isinstance(tp, tuple) and len(tp) == 2:
        return f"{tp[0]}[{tp[1]}]"
    return str(tp)
