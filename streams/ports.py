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


class InputConsumer(Protocol):
    """The worker's Kafka consumer, as the runtime uses it: which partitions it holds,
    seeking one back, and the log end its latest fetch reported (None: not known)."""

    def assignment(self) -> set[Any]: ...
    async def seek(self, tp: Any, offset: int) -> None: ...
    def highwater(self, topic: str, partition: int) -> int | None: ...


class NoConsumer:
    """No consumer (tools and tests that feed the runtime themselves)."""

    def assignment(self) -> set[Any]:
        return set()

    async def seek(self, tp: Any, offset: int) -> None:
        return None

    def highwater(self, topic: str, partition: int) -> int | None:
        return None
