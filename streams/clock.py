"""The worker's wall clock in epoch milliseconds."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Wall clock for the engine's one sanity check (future timestamps, see engine.py)
    and the times snapshots are written and aged by."""
    return int(time.time() * 1000)
