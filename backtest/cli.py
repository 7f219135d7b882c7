"""`ecom-stream replay` and `ecom-stream produce`: backtest commands of the CLI.

>>> import argparse
>>> parser = argparse.ArgumentParser(prog="ecom-stream")
>>> add_backtest_parsers(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["replay", "a.jsonl", "--report", "out", "--limit", "5"])
>>> args.files, args.report, args.partitions, args.limit, args.quiet
(['a.jsonl'], 'out', 4, 5, False)
>>> parser.parse_args(["produce", "a.jsonl", "--speed", "max"]).speed
inf
>>> t = parser.parse_args(["truth-stream", "-o", "e.jsonl.gz", "--truth", "t.json", "--days", "2"])
>>> t.output, t.truth, t.days, t.users
('e.jsonl.gz', 't.json', 2, None)
>>> send_delay(1_000, 11_000, 10.0), send_delay(1_000, 11_000, float("inf"))
(1.0, 0.0)
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _speed(text: str) -> float:
    if text == "max":
        return math.inf
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"speed must be > 0 or 'max', got {text}")
    return value


def add_backtest_parsers(sub: Any) -> None:
    rp = sub.add_parser(
        "replay",
        help="replay event files through the engine offline",
        description="Replay JSON Lines event files (merged in event time) "
        "through the live engine; write outputs.jsonl.gz, report.json and "
        "report.html to the report folder. The engine honours the same ECOM_DOMAIN_<FIELD> "
        "environment variables as the worker (e.g. ECOM_DOMAIN_TOP_K=20, "
        "ECOM_DOMAIN_KNOWLEDGE_DELAY_MS=60000; fields of online_models/config.py); "
        "--partitions, --top-k and --knowledge-delay-ms override them. "
        "See docs/backtesting.md.",
    )
    rp.add_argument("files", nargs="+", metavar="FILE", help=".jsonl or .jsonl.gz input files")
    rp.add_argument("--report", required=True, metavar="OUT", help="output folder")
    rp.add_argument(
        "--partitions",
        type=_positive_int,
        default=4,
        help="engines to run, as live partitions (default 4)",
    )
    rp.add_argument(
        "--top-k",
        type=_positive_int,
        default=None,
        help="recommendation length written to outputs (default: engine's 10)",
    )
    rp.add_argument(
        "--limit", type=_positive_int, default=None, metavar="N", help="stop after N input lines"
    )
    rp.add_argument(
        "--knowledge-delay-ms",
        type=int,
        default=None,
        metavar="MS",
        help="event time before a partition's knowledge updates (item transitions, labels, "
        "spend) become visible to all partitions (default: ECOM_DOMAIN_KNOWLEDGE_DELAY_MS or 0)",
    )
    rp.add_argument(
        "--per-partition-knowledge",
        action="store_true",
        help="give each partition its own knowledge instead of one shared (for comparison)",
    )
    rp.add_argument(
        "--evaluate-from",
        type=int,
        default=None,
        metavar="TS",
        help="judge next-item positions only from this event time (ms), e.g. the split time "
        "of split-sessions, so the training part is not scored",
    )
    rp.add_argument(
        "--every-position",
        dest="emitted_only",
        action="store_false",
        default=False,
        help="at every position the user holds the list the engine serves right then "
        "(the default, the field's next-item protocol)",
    )
    rp.add_argument(
        "--emitted-only",
        dest="emitted_only",
        action="store_true",
        default=False,
        help="the user holds only the recommendations the engine emitted (rate-limited, "
        "as live); every position is still judged, one without a list is a miss",
    )
    rp.add_argument("--quiet", action="store_true", help="no progress bar")
    rp.add_argument("--no-html", action="store_true", help="skip report.html")
    rp.set_defaults(func=_replay)
    sp = sub.add_parser(
        "split-sessions",
        help="split a session click log by time (last day = test)",
        description="Split a session-rec click log (SessionId, ItemId, Time; e.g. YOOCHOOSE) "
        "into OUT/train.txt and OUT/test.txt: sessions ending in the last --test-days are "
        "test sessions; test clicks on items unseen in training and test sessions left "
        "shorter than 2 are dropped. OUT/split.json holds the split time (ms) to pass "
        "to `replay --evaluate-from`. Import both with `import yoochoose`.",
    )
    sp.add_argument("source", metavar="SOURCE")
    sp.add_argument("--out", required=True, metavar="OUT")
    sp.add_argument("--test-days", type=float, default=1.0)
    sp.set_defaults(func=_split)
    tp = sub.add_parser(
        "truth-stream",
        help="write the known-model market (events + true probabilities)",
        description="Write a synthetic market whose clicks and conversions follow a "
        "known logistic model (backtest/truth.py): the events as the replay reads them "
        "(campaigns with their budgets first) and, in --truth, each impression's true "
        "P(click) and P(conversion | click) and the campaign budgets. Replay the events "
        "and compare what the engine learned with the truth; see docs/backtesting.md.",
    )
    tp.add_argument("-o", "--output", required=True, metavar="EVENTS", help=".jsonl(.gz)")
    tp.add_argument("--truth", required=True, metavar="JSON", help="true probabilities")
    tp.add_argument("--users", type=_positive_int, default=None, help="default 3000")
    tp.add_argument("--days", type=_positive_int, default=None, help="default 4")
    tp.add_argument("--seed", type=int, default=None, help="default 1")
    tp.set_defaults(func=_truth_stream)
    pp = sub.add_parser(
        "produce",
        help="write event files to the input topics",
        description="Send JSON Lines events to Kafka in file order, keyed by "
        "user_id (campaigns by campaign_id), timestamped with the event time.",
    )
    pp.add_argument("files", nargs="+", metavar="FILE")
    pp.add_argument(
        "--speed",
        type=_speed,
        default=math.inf,
        help="multiple of real time from event-time gaps, or 'max' (default)",
    )
    pp.set_defaults(func=_produce)


def _replay(args: argparse.Namespace) -> int:
    from backtest.replay import ReplayOptions, progress_enabled, replay
    from online_models.config import domain_overrides

    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    options = ReplayOptions(
        partitions=args.partitions,
        top_k=args.top_k,
        limit=args.limit,
        progress=progress_enabled(sys.stderr, args.quiet),
        domain=domain_overrides(os.environ),
        knowledge_delay_ms=args.knowledge_delay_ms,
        shared=not args.per_partition_knowledge,
        evaluate_from=args.evaluate_from,
        every_position=not args.emitted_only,
    )
    report = replay(args.files, args.report, options)
    if not args.no_html:
        from backtest.html_report import write_html

        write_html(Path(args.report) / "report.html", report)
    counts, perf = report["counts"], report["performance"]
    events, invalid = (sum(counts[k].values()) for k in ("events_by_topic", "invalid_by_reason"))
    print(
        f"replayed {events} events ({perf['events_per_second']:.0f}/s), invalid {invalid}, "
        f"outputs {counts['outputs_by_topic']} -> {args.report}"
    )
    return 0


def _truth_stream(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from backtest.truth import TruthParams, generate_truth, write_truth

    params = TruthParams()
    given = {"n_users": args.users, "days": args.days, "seed": args.seed}
    params = replace(params, **{k: v for k, v in given.items() if v is not None})
    stream = generate_truth(params)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.truth).parent.mkdir(parents=True, exist_ok=True)
    write_truth(stream, args.output, args.truth)
    n = sum(1 for _ in stream.impressions())
    print(
        f"wrote {len(stream.events)} events ({n} impressions, {len(stream.budgets)} "
        f"campaigns) -> {args.output}; truth -> {args.truth}"
    )
    return 0


def _split(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from backtest.split import split_sessions

    stats = split_sessions(args.source, args.out, args.test_days)
    for key, value in asdict(stats).items():
        print(f"{key:<24}{value}")
    return 0


def send_delay(first_ts: int, ts: int, speed: float) -> float:
    """Seconds after the start at which an event of time `ts` is due."""
    return 0.0 if math.isinf(speed) else (ts - first_ts) / 1000.0 / speed


def _records(files: Sequence[str], topics: dict[str, str], invalid: Counter[str]) -> Any:
    """(topic, key, value, ts) in event time across all files, as the replay reads them;
    invalid lines are counted, not sent."""
    from backtest.replay import merged

    disorder: Counter[str] = Counter()
    for ts, _, _, logical, ev in merged(files, invalid, disorder):
        key = ev.campaign_id if logical == "campaigns" else ev.user_id
        yield (
            topics[logical],
            key.encode(),
            msgspec.json.encode(ev),
            (None if logical == "campaigns" else ts),
        )


async def produce(files: Sequence[str], speed: float) -> tuple[int, Counter[str]]:
    """Write the files' events to the input topics, keyed by user (campaigns by id), with
    their event times as record timestamps; `speed` x real time (inf: at once)."""
    from aiokafka import AIOKafkaProducer

    from streams.app import kafka_client_kwargs
    from streams.settings import Settings

    s = Settings.from_env()
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
        for topic, key, value, ts in _records(files, topics, invalid):
            if ts is not None:
                first = ts if first is None else first
                wait = start + send_delay(first, ts, speed) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            await producer.send(topic, value, key=key, timestamp_ms=ts)
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent, invalid


def _produce(args: argparse.Namespace) -> int:
    from streams.cli import require_broker
    from streams.settings import Settings

    require_broker(Settings.from_env())  # one clear line and exit 2 when unreachable
    sent, invalid = asyncio.run(produce(args.files, args.speed))
    print(f"sent {sent} events" + (f"; invalid lines not sent: {dict(invalid)}" if invalid else ""))
    return 0 if sent else 1
