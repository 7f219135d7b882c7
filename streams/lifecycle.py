"""Start-up rule of the commands that talk to Kafka: an unreachable cluster is one
clear line on stderr and exit code 2, not a traceback (`require_broker`, called before
anything else connects). The shutdown deadline lives in
streams/faust_fixes/bounded_shutdown.py (it overrides a private mode method)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from streams.end_offsets import log_end_offsets

log = logging.getLogger(__name__)
EXIT_UNREACHABLE = 2


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
