"""Table writes for a record applied after the agent's iteration has moved on.

Works around faust-streaming 0.15.3 tables taking the changelog partition of a write
from `faust.streams.current_event()`, the event the stream is yielding right now (a
context variable); a write with no current event raises TypeError ("Cannot modify table
key from outside of stream iteration"). The runtime merges a partition's input topics
in event time (online_models/merge.py), so it applies some records later than they
were read: when a later record of the same partition arrives, or from a timer when a
topic fell silent. For each record applied it makes that record's own Faust event the
current one, so its writes go to its own partition's changelog, as Faust's would.
Faust has no public way to set it (`Stream._set_current_event` is private too and
needs the stream); this sets the module's private `_current_event` context variable
for the duration of the write only.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

from faust import streams as faust_streams


@contextlib.contextmanager
def current_event(event: Any) -> Iterator[None]:
    """Within the block, `faust.streams.current_event()` is `event` (None: unchanged)."""
    if event is None:
        yield
        return
    var = faust_streams._current_event
    token = var.set(weakref.ref(event))
    try:
        yield
    finally:
        var.reset(token)
