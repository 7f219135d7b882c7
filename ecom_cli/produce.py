"""`ecom-stream produce`: replay event files into Kafka with their event times.

Events are read as the offline replay reads them (merged in event time, invalid lines
counted, not sent), keyed by user (campaigns by campaign id) and timestamped with the
event time. Settings and input files are checked before the broker is asked.

>>> send_delay(1_000, 11_000, 10.0), send_delay(1_000, 11_000, float("inf"))
(1.0, 0.0)
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from backtest.argtypes import speed
from backtest.event_files import merged
from backtest.inputs import NothingValid, check_input_files
from backtest.progress import Progress, counts_text, progress_enabled
from ecom_cli.kafka_commands import check_broker
from streams.settings import Settings

Record = tuple[str, bytes, bytes, int | None]


def send_delay(first_ts: int, ts: int, speed: float) -> float:
    """Seconds after the start at which an event of time `ts` is due."""
    return 0.0 if math.isinf(speed) else (ts - first_ts) / 1000.0 / speed


def records(
    files: Sequence[str], topics: dict[str, str], invalid: Counter[str]
) -> Iterator[Record]:
    """(topic, key, value, ts) in event time across all files, as the replay reads them;
    invalid lines are counted, not sent."""
    disorder: Counter[str] = Counter()
    for ts, _, _, _, logical, ev in merged(files, invalid, disorder):
        key = ev.campaign_id if logical == "campaigns" else ev.user_id
        yield (
            topics[logical],
            key.encode(),
            msgspec.json.encode(ev),
            (None if logical == "campaigns" else ts),
        )


async def produce(
    s: Settings, files: Sequence[str], speed: float, progress: Progress | None = None
) -> tuple[int, Counter[str]]:
    """Write the files' events to the input topics, keyed by user (campaigns by id), with
    their event times as record timestamps; `speed` x real time (inf: at once)."""
    from aiokafka import AIOKafkaProducer

    from streams.app import kafka_client_kwargs

    topics = {
        "clickstream": s.topic_clickstream,
        "orders": s.topic_orders,
        "ad-impressions": s.topic_impressions,
        "campaigns": s.topic_campaigns,
    }
    producer = AIOKafkaProducer(**kafka_client_kwargs(s), acks="all", linger_ms=20)
    await producer.start()
    invalid: Counter[str] = Counter()
    sent, first, start = 0, None, time.monotonic()
    try:
        for topic, key, value, ts in records(files, topics, invalid):
            if ts is not None:
                first = ts if first is None else first
                wait = start + send_delay(first, ts, speed) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            await producer.send(topic, value, key=key, timestamp_ms=ts)
            sent += 1
            if progress is not None and not sent & 0x3FF:
                progress.update(sent, ts)
        await producer.flush()
    finally:
        await producer.stop()
    return sent, invalid


def _produce(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    check_input_files(args.files)
    check_broker(settings)  # one clear line and exit 2 when unreachable
    started = time.perf_counter()
    enabled = progress_enabled(sys.stderr, args.quiet)
    with Progress("produce", args.files, enabled) as progress:
        sent, invalid = asyncio.run(produce(settings, args.files, args.speed, progress))
    bad = f"; invalid lines not sent: {counts_text(invalid)}" if invalid else ""
    if not sent:
        raise NothingValid(f"no valid events in {', '.join(args.files)}{bad}")
    seconds = time.perf_counter() - started
    print(f"sent {sent:,} events in {seconds:.1f}s ({sent / max(seconds, 1e-9):,.0f}/s){bad}")
    return 0


def add_produce_parser(sub: Any) -> None:
    pp = sub.add_parser(
        "produce",
        help="write event files to the input topics",
        description="Send JSON Lines events (.jsonl or .jsonl.gz) to Kafka merged in event "
        "time, keyed by user_id (campaigns by campaign_id), timestamped with the event "
        "time; invalid lines are counted and not sent. Configuration comes from the "
        "environment (see `ecom-stream settings`).",
    )
    pp.add_argument("files", nargs="+", metavar="FILE", help=".jsonl or .jsonl.gz event files")
    pp.add_argument(
        "--speed",
        type=speed,
        default=math.inf,
        help="multiple of real time from the event-time gaps, or 'max' (default: max)",
    )
    pp.add_argument("--quiet", action="store_true", help="no progress bar")
    pp.set_defaults(func=_produce)
