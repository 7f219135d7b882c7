"""Log-end offsets read from fetch responses instead of ListOffsets.

Some Kafka-compatible brokers (Tansu, the embedded dev broker) answer ListOffsets
(latest) with the first offset of the last batch plus one, not the log end. Faust
recovers a table by reading its changelog up to that offset, so it would silently
drop the tail of the last batch (measured: 3,000 increments came back as 2,999).
The high watermark carried by fetch responses is right, so we read it from a fetch
(public aiokafka API only). Enabled by ECOM_FETCH_END_OFFSETS=1, which also makes Faust's
table recovery use it (streams/faust_fixes/highwaters.py); correct (just slower) on
Apache Kafka too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


async def fetch_end_offsets(
    consumer_kwargs: Mapping[str, Any], partitions: Iterable[Any], timeout_s: float = 10.0
) -> dict[Any, int]:
    """Log-end offsets of `partitions` from fetch responses (see module docstring)."""
    tps = list(partitions)
    if not tps:
        return {}
    return await log_end_offsets(consumer_kwargs, tps, via_fetch=True, timeout_s=timeout_s)


async def log_end_offsets(
    consumer_kwargs: Mapping[str, Any],
    partitions: Iterable[Any],
    via_fetch: bool,
    timeout_s: float = 10.0,
) -> dict[Any, int]:
    """Log-end offsets, by ListOffsets or (`via_fetch`) from fetch responses, within
    `timeout_s` in all (TimeoutError otherwise). Always contacts the cluster, even for
    no partitions, so it doubles as the reachability check of the health probes."""
    tps = list(partitions)
    probe = AIOKafkaConsumer(
        enable_auto_commit=False,
        group_id=None,
        request_timeout_ms=max(1000, int(timeout_s * 1000)),
        **consumer_kwargs,
    )
    try:
        return await asyncio.wait_for(_read_ends(probe, tps, via_fetch), timeout_s)
    finally:
        await probe.stop()  # safe after a failed or cancelled start


async def _read_ends(probe: AIOKafkaConsumer, tps: list[Any], via_fetch: bool) -> dict[Any, int]:
    await probe.start()
    if not tps:
        return {}
    kafka_tps = [TopicPartition(tp.topic, tp.partition) for tp in tps]
    probe.assign(kafka_tps)
    reported = await probe.end_offsets(kafka_tps)
    if not via_fetch:
        return {orig: int(reported[tp]) for orig, tp in zip(tps, kafka_tps, strict=True)}
    for tp in kafka_tps:
        # Start just before the reported end: one small fetch returns the rest
        # of the last batch and, with it, the true high watermark.
        probe.seek(tp, max(reported[tp] - 1, 0))
    missing = set(kafka_tps)
    while missing:
        await probe.getmany(*missing, timeout_ms=200, max_records=1)
        missing = {tp for tp in missing if probe.highwater(tp) is None}
    return {orig: int(probe.highwater(tp) or 0) for orig, tp in zip(tps, kafka_tps, strict=True)}
