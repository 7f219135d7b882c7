"""A diagnosis switch for memory growth: with ECOM_DEBUG_MEMORY_S=N (> 0) the worker
traces Python allocations (tracemalloc, which slows it down) and logs, every N
seconds, the allocation sites that grew most since the first report and the object
types whose counts grew. Off by default; `benchmarks/soak.py --trace-memory` sets it.
"""

from __future__ import annotations

import gc
import logging
import tracemalloc
from collections import Counter
from typing import Any

log = logging.getLogger(__name__)
TOP = 15
FRAMES = 1  # more frames show callers but slow the worker several times over


def _type_counts() -> Counter[str]:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


def install_memory_debug(app: Any, every_s: float) -> None:
    """Start tracing now (so that the worker's own allocations are seen) and report
    growth from a timer."""
    tracemalloc.start(FRAMES)
    base: dict[str, Any] = {}

    @app.timer(interval=every_s)
    async def memory_report() -> None:
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        counts = _type_counts()
        traced, _ = tracemalloc.get_traced_memory()
        if not base:
            base.update(snap=snap, counts=counts)
            log.warning("memory: baseline, %.1f MB traced", traced / 1e6)
            return
        lines = [f"memory: {traced / 1e6:.1f} MB traced; top growth since the baseline:"]
        for stat in snap.compare_to(base["snap"], "lineno")[:TOP]:
            where = " <- ".join(f"{f.filename}:{f.lineno}" for f in stat.traceback)
            lines.append(f"  {stat.size_diff / 1e6:+8.2f} MB {stat.count_diff:+8d} blocks  {where}")
        grown = (counts - base["counts"]).most_common(TOP)
        lines.append("  object counts grown: " + ", ".join(f"{t} +{n}" for t, n in grown))
        log.warning("\n".join(lines))
