"""Sends what a pipeline step emits to the Faust topics, by logical name."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from online_models.pipeline import REPARTITION, Step
from streams.ports import OutputTopic

WRITER_HEADER = "ecom-writer"


class OutputSender:
    def __init__(
        self, topics: Mapping[str, OutputTopic], writer: Callable[[], bytes] | None = None
    ) -> None:
        # logical output name ("recommendations", "snapshots", ...) and every input
        # topic by its configured name (the target of a repartitioned record)
        self.topics = topics
        # Who wrote an output ("<pid>:<group generation>"): tells ops, and the crash
        # benchmark, which process and which assignment produced it.
        self.writer = writer

    async def send_step(self, source_topic: str, step: Step) -> None:
        """The emissions in order; a repartitioned record goes back to its own topic."""
        writer = [(WRITER_HEADER, self.writer())] if self.writer is not None else []
        for e in step.emissions:
            target = self.topics[source_topic if e.topic == REPARTITION else e.topic]
            headers = e.headers + writer if writer else e.headers
            await target.send(key=e.key, value=e.value, headers=headers, partition=e.partition)

    async def send_snapshot(
        self, partition: int, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        await self.topics["snapshots"].send(
            key=f"p{partition}".encode(), value=value, headers=headers, partition=partition
        )
