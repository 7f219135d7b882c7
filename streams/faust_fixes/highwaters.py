"""Table recovery reads changelogs up to log-end offsets taken from fetch responses.

Works around a broker, not a Faust bug: some Kafka-compatible brokers (Tansu, the
embedded dev broker) answer ListOffsets(latest) with the first offset of the last batch
plus one, not the log end, and Faust recovers a table up to that offset, silently
dropping the tail of the last batch (measured: 3,000 increments came back as 2,999).
Faust has no setting for how it reads end offsets, so this replaces the private
`AIOKafkaConsumerThread._highwaters(partitions)` of faust-streaming 0.15.3 on this app's
consumer thread only (an instance attribute, not the class: other apps in the process
keep Faust's), with `streams.end_offsets.fetch_end_offsets`. Enabled by
ECOM_FETCH_END_OFFSETS=1; correct (just slower) on Apache Kafka too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.end_offsets import fetch_end_offsets


def install(app: Any, consumer_kwargs: Mapping[str, Any]) -> None:
    thread = app.consumer._thread  # Faust's AIOKafkaConsumerThread, made with the consumer

    async def _highwaters(partitions: list[Any]) -> Mapping[Any, int]:
        return await fetch_end_offsets(consumer_kwargs, partitions)

    thread._highwaters = _highwaters
