"""SIGTERM ends a worker within `shutdown_timeout_s`, even when the broker has gone.

Faust's shutdown flushes the producer and commits offsets, and both wait for the broker
forever; mode has no shutdown deadline. Offsets are committed only after outputs are
flushed, so whatever was not flushed by the deadline is redelivered to the partition's
next owner, never lost.

Written for mode-streaming 0.7.1 (faust-streaming 0.15.3), whose signal handlers all go
through the private `mode.Worker._schedule_shutdown(signal)`: the worker class below
overrides it (a subclass, not a patch) to arm a watchdog thread first. The same class
commits initial offsets in mode's public `on_first_start` hook, before the app joins
the group (initial_offsets.py).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)
EXIT_SHUTDOWN_TIMEOUT = 1


def worker_class(base: Any, timeout_s: float, before_start: Callable[[], Awaitable[object]]) -> Any:
    """A subclass of the Faust Worker class `base` whose SIGTERM/SIGINT shutdown ends
    the process after `timeout_s` at the latest (the loop may be stuck on the broker),
    and which awaits `before_start()` before the app starts."""

    class BoundedWorker(base):
        async def on_first_start(self) -> None:
            await before_start()
            await super().on_first_start()

        def _schedule_shutdown(self, signal: Any) -> None:
            _arm_watchdog(timeout_s)
            super()._schedule_shutdown(signal)

    return BoundedWorker


def _arm_watchdog(timeout_s: float) -> None:
    def expire() -> None:
        log.error(
            "shutdown took longer than %.1fs: exiting now; records not committed are "
            "redelivered to the partitions' next owner",
            timeout_s,
        )
        logging.shutdown()
        os._exit(EXIT_SHUTDOWN_TIMEOUT)

    timer = threading.Timer(timeout_s, expire)
    timer.daemon = True
    timer.start()
