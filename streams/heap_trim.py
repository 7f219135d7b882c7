"""Give freed heap memory back to the OS now and then (glibc's `malloc_trim`).

A worker's steady state allocates and frees many small objects per record, from the
event loop's thread and from the Faust consumer's thread (glibc gives each thread its
own arena). glibc keeps freed chunks for reuse and returns the pages of a free run to
the OS only at the top of an arena, so under a fixed population the resident size
kept rising while Python's own allocations were flat (benchmarks/soak.py with
`--trace-memory`: 100 -> 115 MB traced while "free but kept" rose 66 -> 99 MB).
`malloc_trim(0)` releases free pages anywhere in every arena (madvise), costing a few
milliseconds; a timer calls it every ECOM_HEAP_TRIM_S seconds. Not glibc (musl,
macOS): nothing to do, and `trim()` says so once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        fn = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_TRIM = _malloc_trim()


def trim() -> bool:
    """Release free heap pages to the OS; True when the C library could do it.

    >>> isinstance(trim(), bool)
    True
    """
    if _TRIM is None:
        return False
    return bool(_TRIM(0))
