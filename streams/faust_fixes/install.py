"""The one install point of the Faust workarounds (see the package docstring)."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import faust

from streams.faust_fixes import (
    bounded_shutdown,
    commit_guard,
    group_lease,
    highwaters,
    recovery_restart,
    reliable_flush,
)
from streams.faust_fixes.commit_guard import CommitGuard
from streams.faust_fixes.initial_offsets import ensure_committed
from streams.faust_fixes.versions import UnsupportedVersion, require_supported

__all__ = ["UnsupportedVersion", "install"]
_installed: weakref.WeakSet[Any] = weakref.WeakSet()


def install(
    app: Any,
    *,
    guard: CommitGuard,
    on_commit: Callable[[], None],
    client_kwargs: Mapping[str, Any],
    input_topics: Iterable[str],
    partitions: int,
    fetch_end_offsets: bool,
    shutdown_timeout_s: float,
    lease: group_lease.GroupLease,
    on_start: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Apply every workaround to `app` (before it starts). Raises UnsupportedVersion on
    library versions they were not written for; a second call for one app raises.
    `on_start`: awaited too before the worker's services start (after the offsets)."""
    require_supported()
    if app in _installed:
        raise RuntimeError("streams.faust_fixes.install called twice for one app")
    _installed.add(app)
    topics = list(input_topics)
    reliable_flush.install(app)
    commit_guard.install(app, guard, on_commit)
    recovery_restart.install(app)
    group_lease.install(app, lease)
    if fetch_end_offsets:
        highwaters.install(app, client_kwargs)

    async def before_start() -> object:
        committed = await ensure_committed(client_kwargs, app.conf.id, topics, partitions)
        if on_start is not None:
            await on_start()
        return committed

    # `app.Worker(...)` (public) builds the worker from this setting. (Reading the
    # setting first would make Faust warn that it was reconfigured after use.)
    app.conf.Worker = bounded_shutdown.worker_class(faust.Worker, shutdown_timeout_s, before_start)
