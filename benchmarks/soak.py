"""Soak: does one live worker's memory level off under a fixed population?

Starts the embedded broker, creates the topics, starts one worker process
(`python -m ecom_cli worker`, configured like `ecom-stream demo`) and feeds it a FIXED
population of synthetic users (`backtest.synthetic.generate`) at a steady rate for
`--minutes`, sampling the worker's resident memory (VmRSS in /proc/PID/status) as it
goes. Every user sends one event first, so the whole population exists from the
start; after that no new user appears, and whatever keeps growing is not user state.

Event time moves forward continuously: with `--activity 0.05` (about 1.5 sessions a
user a day) and 250 events/s, an hour of event time passes every ~8 s, so click (30
min) and conversion (24 h) windows close, pacing days roll over and decayed counts
age within the first minutes, as they would in a worker that runs for days.

Prints one row per sample (elapsed time, events sent and processed, event time
covered, profiles held, RSS) and, at the end, the RSS growth over the second half of
the run (median RSS of the last minute / that of the minute before half time), PASS
when at most 5%. Ctrl-C stops it
early; it always stops what it started (by PID): the worker, then the broker.

    .venv/bin/python benchmarks/soak.py --minutes 20      # the benchmark (make soak)
    .venv/bin/python benchmarks/soak.py --minutes 3       # a quick look while developing

`--trace-memory` also sets ECOM_DEBUG_MEMORY_S in the worker, which then logs the
Python allocations that grew most (tracemalloc) to its log (slower; for diagnosis).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from any directory

from backtest.synthetic import (  # noqa: E402
    CATEGORIES,
    ITEMS_PER_CATEGORY,
    campaigns,
    generate,
    malformed_inputs,
)
from streams.broker import EmbeddedBroker, free_port  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.topics import create_topics  # noqa: E402

RUN_DIR = ROOT / ".run" / "soak"
MAX_GROWTH = 0.05
YEAR_S = 365 * 86_400
BAD_EVERY = 1000  # one malformed record per this many events, as in the demo


@dataclass
class Sample:
    elapsed_s: float
    sent: int
    processed: int
    event_hours: float
    profiles: int
    rss_mb: float


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process, from /proc (Linux); None once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None  # a zombie has no VmRSS


def population(n_users: int, seed: int, start_ms: int, activity: float) -> Iterator[Any]:
    """One view per user first (the whole population at once), then the generator's
    stream for the same users, `activity` times as busy as its default."""
    for u in range(n_users):
        idx = u % (len(CATEGORIES) * ITEMS_PER_CATEGORY)
        yield (
            "clickstream",
            {
                "event_id": f"warmup-{u}",
                "ts": start_ms + u,
                "user_id": f"u{u}",
                "type": "view",
                "item_id": f"i{idx}",
                "category": CATEGORIES[idx // ITEMS_PER_CATEGORY],
            },
        )
    yield from generate(
        n_users, duration_s=YEAR_S, seed=seed, start_ms=start_ms + n_users, activity=activity
    )


class Feed:
    """Sends the population's events at a steady rate; remembers how far it got."""

    def __init__(self, s: Settings, kwargs: dict[str, Any], args: argparse.Namespace) -> None:
        self.s, self.kwargs, self.args = s, kwargs, args
        self.sent = 0
        self.start_ms = int(time.time() * 1000)
        self.last_ts = self.start_ms

    async def run(self) -> None:
        s = self.s
        topic_of = {
            "clickstream": s.topic_clickstream,
            "orders": s.topic_orders,
            "ad-impressions": s.topic_impressions,
        }
        producer = AIOKafkaProducer(linger_ms=5, **self.kwargs)
        await producer.start()
        try:
            for c in campaigns(3):
                await producer.send(
                    s.topic_campaigns, key=c["campaign_id"].encode(), value=orjson.dumps(c)
                )
            bad = malformed_inputs()
            started = time.monotonic()
            a = self.args
            for topic, event in population(a.users, a.seed, self.start_ms, a.activity):
                await producer.send(
                    topic_of[topic],
                    key=str(event["user_id"]).encode(),
                    value=orjson.dumps(event),
                    timestamp_ms=int(event["ts"]),
                )
                self.sent += 1
                self.last_ts = int(event["ts"])
                if self.sent % BAD_EVERY == 0:
                    t, raw, _ = bad[(self.sent // BAD_EVERY) % len(bad)]
                    await producer.send(topic_of.get(t, t), key=b"bad", value=raw)
                    self.sent += 1
                ahead = self.sent / a.rate - (time.monotonic() - started)
                if ahead > 0.01:
                    await asyncio.sleep(ahead)
        finally:
            await producer.stop()


def scrape(url: str) -> dict[str, float]:
    """Events processed (accepted + dead-lettered) and profiles held, from /metrics."""
    try:
        text = urllib.request.urlopen(url, timeout=2).read().decode()
    except OSError:
        return {}

    def total(metric: str) -> float:
        return sum(float(v) for v in re.findall(rf"^{metric}(?:\{{[^}}]*\}})? (\S+)", text, re.M))

    return {
        "processed": total("ecom_events_in_total") + total("ecom_dead_letters_total"),
        "profiles": total("ecom_active_profiles"),
    }


async def sample_loop(
    pid: int, feed: Feed, url: str, every_s: float, until: float, samples: list[Sample]
) -> None:
    t0 = time.monotonic()
    while True:
        now = time.monotonic()
        m = scrape(url)
        rss = rss_mb(pid)
        if rss is None:
            print("[soak] the worker has gone")
            return
        row = Sample(
            elapsed_s=now - t0,
            sent=feed.sent,
            processed=int(m.get("processed", 0)),
            event_hours=(feed.last_ts - feed.start_ms) / 3.6e6,
            profiles=int(m.get("profiles", 0)),
            rss_mb=rss,
        )
        samples.append(row)
        print(
            f"{row.elapsed_s / 60:7.1f} {row.sent:9d} {row.processed:10d} {row.event_hours:8.1f}"
            f" {row.profiles:9d} {row.rss_mb:8.1f}",
            flush=True,
        )
        if now >= until:
            return
        await asyncio.sleep(max(0.0, min(every_s, until - time.monotonic())))


async def soak(
    s: Settings, kwargs: dict[str, Any], args: argparse.Namespace, pid: int, samples: list[Sample]
) -> None:
    feed = Feed(s, kwargs, args)
    url = f"http://{s.web_host}:{s.web_port}/metrics"
    head = ("minutes", 7), ("sent", 9), ("processed", 10), ("ev-hours", 8), ("profiles", 9)
    print(" ".join(f"{name:>{width}}" for name, width in head), f"{'RSS MB':>8}")
    producer = asyncio.create_task(feed.run())
    try:
        until = time.monotonic() + args.minutes * 60
        await sample_loop(pid, feed, url, args.sample_s, until, samples)
        if producer.done():
            producer.result()  # a producer that failed fails the soak
    finally:
        producer.cancel()
        await asyncio.gather(producer, return_exceptions=True)


def verdict(samples: list[Sample], window_s: float = 60.0) -> int:
    """Growth over the second half: the median RSS of the samples in the last
    `window_s` before the end over the median of those in the `window_s` before half
    time. A single sample can catch a transient peak (a snapshot being encoded), so
    the end points are medians; the plain first/last figures are printed too."""
    if len(samples) < 3:
        print("too few samples for a verdict")
        return 1
    end = samples[-1]
    half = end.elapsed_s / 2

    def around(t: float) -> float:
        rss = sorted(x.rss_mb for x in samples if t - window_s <= x.elapsed_s <= t)
        return rss[len(rss) // 2]

    at_half, at_end = around(half), around(end.elapsed_s)
    mid = next(x for x in samples if x.elapsed_s >= half)
    peak = max(x.rss_mb for x in samples if x.elapsed_s >= half)
    print(
        f"\nRSS at half time ({mid.elapsed_s / 60:.1f} min) {mid.rss_mb:.1f} MB, at the end "
        f"({end.elapsed_s / 60:.1f} min) {end.rss_mb:.1f} MB ({end.rss_mb / mid.rss_mb - 1:+.1%}),"
        f" peak of the second half {peak:.1f} MB"
    )
    print(
        f"events sent {end.sent}, processed {end.processed} (behind: {end.sent - end.processed});"
        f" event time covered {end.event_hours:.1f} h; profiles {end.profiles}"
    )
    growth = at_end / at_half - 1
    ok = growth <= MAX_GROWTH
    print(
        f"growth over the second half (median RSS of the last {window_s:.0f} s before half time,"
        f" {at_half:.1f} MB, and before the end, {at_end:.1f} MB): {at_end / at_half:.4f}"
        f" ({growth:+.1%}), limit {MAX_GROWTH:.0%}: {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.kill(worker.pid, signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=20.0, help="run time (default 20)")
    p.add_argument("--users", type=int, default=2688, help="fixed population size")
    p.add_argument("--rate", type=float, default=250.0, help="events per second")
    p.add_argument(
        "--activity", type=float, default=0.05, help="session rate scale of the generator"
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--sample-s", type=float, default=20.0, help="seconds between RSS samples")
    p.add_argument("--trace-memory", action="store_true", help="tracemalloc in the worker")
    p.add_argument("--run-dir", type=Path, default=RUN_DIR, help="logs and worker data")
    args = p.parse_args(argv)
    run_dir = args.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    # Ctrl-C, and SIGTERM too, end in the same clean-up (a shell that starts the soak in
    # the background makes it ignore SIGINT: restore Python's handler).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    broker = EmbeddedBroker(free_port(), run_dir / "broker.log")
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
        ECOM_FETCH_END_OFFSETS="1",
        ECOM_SESSION_TIMEOUT_S="10",
        ECOM_REBALANCE_TIMEOUT_S="10",
        ECOM_HEARTBEAT_INTERVAL_S="1",
        ECOM_APP_ID=f"ecom-soak-{int(time.time())}",
        ECOM_DATA_DIR=str(run_dir / "worker-data"),
        ECOM_WEB_PORT=str(free_port()),
    )
    if args.trace_memory:
        env["ECOM_DEBUG_MEMORY_S"] = str(max(30.0, args.minutes * 60 / 10))
        env["PYTHONTRACEMALLOC"] = "1"
    s = Settings.from_env(env)
    from streams.app import kafka_client_kwargs

    kwargs = kafka_client_kwargs(s)
    worker = None
    samples: list[Sample] = []
    print(
        f"[soak] broker {broker.bootstrap} (pid {broker.pid}); {args.users} users, "
        f"{args.rate:.0f} events/s, {args.minutes:g} min; logs in {run_dir}",
        flush=True,
    )
    try:
        asyncio.run(create_topics(s, kwargs))
        log = (run_dir / "worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "ecom_cli", "worker"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        print(f"[soak] worker pid {worker.pid}", flush=True)
        asyncio.run(soak(s, kwargs, args, worker.pid, samples))
        if worker.poll() is not None:
            print(f"[soak] the worker exited with {worker.returncode}: FAIL")
            return 1
    except KeyboardInterrupt:
        print("\n[soak] interrupted")
    finally:
        if worker is not None:
            stop_worker(worker)
        broker.stop()
    return verdict(samples)


if __name__ == "__main__":
    raise SystemExit(main())
