"""What the runtime needs of Faust's objects, as Protocols: the runtime and its
collaborators are built from these, so they are typed without importing Faust, and
tests hand in plain fakes."""

from __future__ import annotations

from typing import Any, Protocol


class OutputTopic(Protocol):
    """A Faust topic (raw key and value) the worker sends to."""

    async def send(
        self,
        *,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
        partition: int | None = None,
    ) -> Any: ...
