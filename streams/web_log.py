"""Malformed web requests are logged at most once a minute, as one line.

aiohttp (Faust's web server) answers a request line over 8 KB or with raw non-ASCII
bytes with 400, which is right, but logs a full traceback at ERROR for each one: any
client could flood the worker's log. The filter installed here on aiohttp's server
logger turns the first such record of a minute into one line without traceback and
drops the others, counting them; the next line says how many were suppressed.
Everything else the server logs (a handler that fails, for one) passes unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp.http_exceptions import HttpProcessingError

SERVER_LOGGER = "aiohttp.server"
WINDOW_S = 60.0


class MalformedRequestFilter(logging.Filter):
    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.now = now
        self.last: float | None = None  # when the last line was let through
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        now = self.now()
        if self.last is not None and now - self.last < WINDOW_S:
            self.suppressed += 1
            return False
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        why = (getattr(exc, "message", "") or type(exc).__name__).splitlines()[0][:200]
        record.msg = "malformed web request from %s answered %s: %s (%d suppressed since the last)"
        record.args = (remote, getattr(exc, "code", 400), why, self.suppressed)
        record.exc_info, record.exc_text, record.levelno = None, None, logging.WARNING
        record.levelname = "WARNING"
        self.last, self.suppressed = now, 0
        return True


def install_web_log_filter(now: Callable[[], float] = time.monotonic) -> MalformedRequestFilter:
    """Install the filter once on aiohttp's server logger (again: the same one)."""
    logger = logging.getLogger(SERVER_LOGGER)
    for existing in logger.filters:
        if isinstance(existing, MalformedRequestFilter):
            return existing
    installed = MalformedRequestFilter(now)
    logger.addFilter(installed)
    return installed
