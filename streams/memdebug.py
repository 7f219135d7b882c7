"""A diagnosis switch for memory growth: with ECOM_DEBUG_MEMORY_S=N (> 0) the worker
logs, every N seconds, glibc's heap figures (in use, and free but kept: fragmentation)
and the object types whose counts grew since the first report. When Python traces
allocations too (PYTHONTRACEMALLOC=1, which slows the worker down), it also logs the
allocation sites that grew most. Off by default; `benchmarks/soak.py --trace-memory`
sets both.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import sys
import tracemalloc
from collections import Counter
from typing import Any

log = logging.getLogger(__name__)
TOP = 15


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


def heap_summary() -> str:
    """glibc's view of the C heap (all arenas): in use vs free but kept (fragmentation)."""
    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return "C heap: n/a"
    mallinfo2.restype = _MallInfo2
    m = mallinfo2()
    return (
        f"C heap in use {m.uordblks / 1e6:.1f} MB, free but kept {m.fordblks / 1e6:.1f} MB, "
        f"mmapped {m.hblkhd / 1e6:.1f} MB; Python blocks {sys.getallocatedblocks()}"
    )


def _type_counts() -> Counter[str]:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


def install_memory_debug(app: Any, every_s: float) -> None:
    """Report memory growth from a timer (see the module docstring)."""
    base: dict[str, Any] = {}

    @app.timer(interval=every_s)
    async def memory_report() -> None:
        tracing = tracemalloc.is_tracing()
        snap = (
            tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )
            if tracing
            else None
        )
        counts = _type_counts()
        traced = f"{tracemalloc.get_traced_memory()[0] / 1e6:.1f} MB traced; " if tracing else ""
        if not base:
            base.update(snap=snap, counts=counts)
            log.warning("memory: baseline, %s%s", traced, heap_summary())
            return
        lines = [f"memory: {traced}{heap_summary()}"]
        if snap is not None and base["snap"] is not None:
            lines.append("  top growth since the baseline:")
            for stat in snap.compare_to(base["snap"], "lineno")[:TOP]:
                where = " <- ".join(f"{f.filename}:{f.lineno}" for f in stat.traceback)
                lines.append(
                    f"  {stat.size_diff / 1e6:+8.2f} MB {stat.count_diff:+8d} blocks  {where}"
                )
        grown = (counts - base["counts"]).most_common(TOP)
        lines.append("  object counts grown: " + ", ".join(f"{t} +{n}" for t, n in grown))
        log.warning("\n".join(lines))
