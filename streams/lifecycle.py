"""Start-up and shutdown rules of the commands that talk to Kafka.

- Start-up: an unreachable cluster is one clear line on stderr and exit code 2, not a
  traceback (`require_broker`, called before anything else connects).
- Shutdown: SIGTERM must end a worker within `shutdown_timeout_s` even when the broker
  has gone, because flushing and committing would otherwise wait for it forever.
  Offsets are committed only after outputs are flushed, so whatever was not flushed
  by the deadline is redelivered to the partition's next owner, never lost.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from streams.end_offsets import log_end_offsets

log = logging.getLogger(__name__)
EXIT_UNREACHABLE = 2
EXIT_SHUTDOWN_TIMEOUT = 1


class BrokerUnreachable(RuntimeError):
    """The configured Kafka cluster did not answer; str() is the one line to print."""


async def require_broker(
    bootstrap: str, client_kwargs: Mapping[str, Any], timeout_s: float = 10.0
) -> None:
    """Raise BrokerUnreachable unless the cluster answers a metadata request in time."""
    quiet = [logging.getLogger(name) for name in ("aiokafka", "aiokafka.conn")]
    levels = [q.level for q in quiet]
    for q in quiet:  # aiokafka logs each failed connection attempt; one line is enough
        q.setLevel(logging.CRITICAL)
    try:
        await log_end_offsets(client_kwargs, [], via_fetch=False, timeout_s=timeout_s)
    except Exception as exc:
        why = str(exc).strip() or type(exc).__name__
        raise BrokerUnreachable(
            f"cannot reach Kafka at {bootstrap} within {timeout_s:g}s ({why}); check "
            "KAFKA_BOOTSTRAP_SERVERS, that the brokers are up and reachable from here, "
            "and KAFKA_SECURITY_PROTOCOL / SASL / SSL settings"
        ) from None
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)


def bounded_shutdown_worker(worker_class: Any, timeout_s: float) -> Any:
    """A Faust Worker class whose SIGTERM/SIGINT shutdown ends the process after
    `timeout_s` at the latest (a watchdog thread; the loop may be stuck on the broker).

    Written for mode-streaming 0.7 (faust-streaming 0.15), whose signal handlers all
    go through `Worker._schedule_shutdown`; checked here so an upgrade that renames it
    fails at start-up instead of silently losing the bound."""
    if not callable(getattr(worker_class, "_schedule_shutdown", None)):
        raise RuntimeError("mode.Worker._schedule_shutdown is gone: review lifecycle.py")

    class BoundedWorker(worker_class):
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
