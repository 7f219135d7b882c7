"""`make run`: embedded broker (unless KAFKA_BOOTSTRAP_SERVERS is set), topics, one
worker process and a realistic synthetic stream, with a compact live summary.
Ctrl-C stops the producer, then the worker, then the broker: only what it started."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from backtest.demo_market import DAY_MS, DEMO_BUDGETS, DemoBidder, demo_stream
from streams.broker import EmbeddedBroker, free_port, port_free
from streams.demo_screen import CampaignLine, View, layout
from streams.settings import Settings
from streams.topics import create_topics

RUN_DIR = Path(".run")
REFRESH_S = 2.0
LAG_HIGH = 2_000  # records behind: above this (and growing) the demo slows its stream
LAG_LOW = 500  # below this it speeds back up towards the rate asked for
MIN_RATE = 50.0


class Throttle:
    """The demo stream's rate, adapted to the worker: lowered while the worker's lag
    is high and growing (its bid adjustments would reach the demo's ad server hours of
    demo time late, and pacing would steer on stale factors), raised back towards the
    rate asked for once it has caught up."""

    def __init__(self, target: float) -> None:
        self.target = target
        self.rate = target
        self.lags: list[float] = []

    def observe(self, lag: float | None, processing: bool = True) -> None:
        """One read of the worker's lag; `processing`: the worker is consuming (a lag
        while it starts up says nothing about its speed)."""
        if lag is None:
            return
        self.lags = [*self.lags[-4:], lag]
        if processing and lag > LAG_HIGH and len(self.lags) > 1 and lag >= self.lags[-2]:
            self.rate = max(self.rate * 0.7, MIN_RATE)
        elif lag < LAG_LOW:
            self.rate = min(self.rate * 1.3, self.target)

    @property
    def growing(self) -> bool:
        """The lag grew at each of the last five reads and is high."""
        lags = self.lags
        return len(lags) >= 5 and lags[-1] > LAG_HIGH and all(a < b for a, b in pairwise(lags))


async def produce_demo(
    s: Settings,
    client_kwargs: dict[str, Any],
    rate: float,
    limit: int | None = None,
    seed: int = 7,
    bidder: DemoBidder | None = None,
    throttle: Throttle | None = None,
    injected: list[int] | None = None,
) -> int:
    """Send campaigns, then a synthetic stream at `rate` events/s (with a few malformed
    records, so the dead-letter path shows, counted in `injected`), keyed by user id.
    With a `bidder`, only the impressions it wins are sent (and the ad clicks on them);
    with a `throttle`, its rate replaces `rate`."""
    from backtest.synthetic import campaigns, malformed_inputs

    topic_of = {
        "clickstream": s.topic_clickstream,
        "orders": s.topic_orders,
        "ad-impressions": s.topic_impressions,
    }
    producer = AIOKafkaProducer(linger_ms=5, **client_kwargs)
    await producer.start()
    sent = 0
    try:
        for c in campaigns(3):
            c["daily_budget"] = DEMO_BUDGETS.get(c["campaign_id"], c["daily_budget"])
            await producer.send(
                s.topic_campaigns, key=c["campaign_id"].encode(), value=orjson.dumps(c)
            )
        bad = malformed_inputs()
        due = time.monotonic()
        unserved: set[str] = set()
        # Event time runs ~200x wall time (click windows close within seconds); it
        # starts at today's UTC midnight so the first budget day is a whole day.
        midnight = int(time.time() * 1000) // DAY_MS * DAY_MS
        for topic, event in demo_stream(seed, midnight):
            if limit is not None and sent >= limit:
                break
            if bidder is not None:
                if topic == "ad-impressions" and not bidder.serve(event):
                    if len(unserved) > 500_000:
                        unserved.clear()
                    unserved.add(event["impression_id"])
                    continue
                if event.get("impression_id") in unserved:  # a click on an ad not shown
                    continue
            await producer.send(
                topic_of[topic],
                key=str(event["user_id"]).encode(),
                value=orjson.dumps(event),
                timestamp_ms=int(event["ts"]),
            )
            sent += 1
            if sent % 1000 == 0:
                t, raw, _ = bad[(sent // 1000) % len(bad)]
                await producer.send(topic_of.get(t, t), key=b"bad", value=raw)
                if injected is not None:
                    injected[0] += 1
            due += 1.0 / (throttle.rate if throttle is not None else rate)
            ahead = due - time.monotonic()
            if ahead > 0.01:
                await asyncio.sleep(ahead)
            elif ahead < -1.0:
                due = time.monotonic()  # fell behind (a slow send): do not burst to catch up
    finally:
        await producer.stop()
    return sent


class Summary:
    """Counts output topics from their end, scrapes the worker's /metrics and redraws
    the screen (`streams.demo_screen`) in place."""

    def __init__(
        self,
        s: Settings,
        client_kwargs: dict[str, Any],
        metrics_url: str,
        bidder: DemoBidder | None = None,
        throttle: Throttle | None = None,
        injected: list[int] | None = None,
        header: str = "",
    ) -> None:
        self.s = s
        self.kwargs = client_kwargs
        self.url = metrics_url
        self.bidder = bidder
        self.throttle = throttle
        self.injected = injected if injected is not None else [0]
        self.header = header
        self.counts = {"recommendations": 0, "bid-adjustments": 0, "dead-letter": 0}
        self.samples: dict[str, Any] = {}
        self.last = (time.monotonic(), 0.0, 0)
        self.last_clock = 0

    async def run(self, every_s: float = REFRESH_S) -> None:
        from rich.live import Live

        names = {
            self.s.topic_recommendations: "recommendations",
            self.s.topic_bid_adjustments: "bid-adjustments",
            self.s.topic_dead_letter: "dead-letter",
        }
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self.kwargs)
        await consumer.start()
        tps = [
            TopicPartition(t, p)
            for t in names
            for p in sorted(consumer.partitions_for_topic(t) or [])
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        try:
            with Live(layout(View(header=self.header)), auto_refresh=False) as live:
                while True:
                    deadline = time.monotonic() + every_s
                    while time.monotonic() < deadline:
                        for tp, msgs in (await consumer.getmany(timeout_ms=200)).items():
                            self._take(names[tp.topic], msgs)
                    live.update(layout(self.view(_scrape(self.url))), refresh=True)
        finally:
            await consumer.stop()

    def _take(self, name: str, msgs: list[Any]) -> None:
        self.counts[name] += len(msgs)
        for msg in msgs:
            if name == "bid-adjustments":
                adj = orjson.loads(msg.value)
                if self.bidder is not None:
                    self.bidder.record(adj)
                if adj.get("user_id") is not None:  # a user's bid, not a pacing update
                    self.samples[name] = adj
        if name == "recommendations" and msgs:
            self.samples[name] = orjson.loads(msgs[-1].value)

    def view(self, scraped: dict[str, Any]) -> View:
        now = time.monotonic()
        events_in = scraped.get("in", 0.0)
        out = sum(self.counts.values())
        dt = max(now - self.last[0], 1e-6)
        rate_in, rate_out = (events_in - self.last[1]) / dt, (out - self.last[2]) / dt
        self.last = (now, events_in, out)
        throttle = self.throttle
        if throttle is not None:
            throttle.observe(scraped.get("lag"), processing=rate_in > 0)
        v = View(
            rate_in=max(rate_in, 0.0),
            rate_out=max(rate_out, 0.0),
            rate=throttle.rate if throttle is not None else 0.0,
            target_rate=throttle.target if throttle is not None else 0.0,
            lag=scraped.get("lag"),
            lag_growing=throttle.growing if throttle is not None else False,
            recs=self.counts["recommendations"],
            bids=self.counts["bid-adjustments"],
            dead_letters=self.counts["dead-letter"],
            injected=self.injected[0],
            auc=scraped.get("auc", "n/a"),
            logloss=scraped.get("logloss", "n/a"),
            recommendation=self.samples.get("recommendations"),
            bid=self.samples.get("bid-adjustments"),
            header=self.header,
        )
        if self.bidder is not None:
            _campaign_lines(v, self.bidder, scraped)
            if self.last_clock:
                v.speed = max(self.bidder.clock - self.last_clock, 0) / 1000 / dt
            self.last_clock = self.bidder.clock
        return v


def _scrape(url: str) -> dict[str, Any]:
    try:
        text = urllib.request.urlopen(url, timeout=1).read().decode()
    except OSError:
        return {}
    out: dict[str, Any] = {
        "in": sum(float(v) for v in re.findall(r"^ecom_events_in_total\{[^}]*\} (\S+)", text, re.M))
    }
    lags = re.findall(r"^ecom_consumer_lag\{[^}]*\} (\S+)", text, re.M)
    if lags:
        out["lag"] = sum(float(v) for v in lags)
    out["pacing"] = {
        c: float(v)
        for c, v in re.findall(r'^ecom_pacing_factor\{campaign="([^"]+)"\} (\S+)', text, re.M)
    }
    for key, metric in (("auc", "ecom_model_auc"), ("logloss", "ecom_model_logloss")):
        m = re.search(rf'^{metric}\{{model="click"\}} (\S+)', text, re.M)
        if m:
            out[key] = f"{float(m.group(1)):.3f}"
    return out


def _campaign_lines(v: View, bidder: DemoBidder, scraped: dict[str, Any]) -> None:
    """Per campaign: today's spend against its budget and its even line by now, the
    pacing factor the worker reports, and how long since it last won."""
    share = (bidder.clock % DAY_MS) / DAY_MS
    v.clock_ms = bidder.clock
    v.day = bidder.day - bidder.first_day + 1 if bidder.first_day >= 0 else 1
    v.won = bidder.served / bidder.offered if bidder.offered else 0.0
    for c, budget in sorted(bidder.budgets.items()):
        factor = scraped.get("pacing", {}).get(c, bidder.pacing.get(c, 1.0))
        v.campaigns.append(
            CampaignLine(
                c, bidder.spend.get(c, 0.0), budget, budget * share, factor, bidder.idle_ms(c)
            )
        )


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (e.g. `timeout`) stops what we started, like Ctrl-C


def _log_to_file(path: Path) -> None:
    """Every log line of this process (ours, aiokafka's) to `path`, none on the screen."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def run_demo(rate: float) -> int:
    RUN_DIR.mkdir(exist_ok=True)
    _log_to_file(RUN_DIR / "demo.log")
    signal.signal(signal.SIGTERM, _interrupt)
    env = dict(os.environ)
    broker = None
    where = f"Kafka at {env.get('KAFKA_BOOTSTRAP_SERVERS')}"
    if "KAFKA_BOOTSTRAP_SERVERS" not in env:
        broker = EmbeddedBroker(9092 if port_free(9092) else free_port(), RUN_DIR / "broker.log")
        env.update(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap, ECOM_FETCH_END_OFFSETS="1")
        where = f"embedded broker on {broker.bootstrap} (pid {broker.proc.pid})"
    env.setdefault("ECOM_SESSION_TIMEOUT_S", "10")
    env.setdefault("ECOM_REBALANCE_TIMEOUT_S", "10")
    env.setdefault("ECOM_HEARTBEAT_INTERVAL_S", "1")
    env.setdefault("ECOM_APP_ID", f"ecom-demo-{int(time.time())}")
    env.setdefault("ECOM_DATA_DIR", str(RUN_DIR / "worker-data"))
    s = Settings.from_env(env)
    from streams.app import kafka_client_kwargs

    kwargs = kafka_client_kwargs(s)
    worker = None
    try:
        asyncio.run(create_topics(s, kwargs))
        log = (RUN_DIR / "worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "ecom_cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://{s.web_host}:{s.web_port}/metrics"
        header = (
            f"[b]ecom-stream demo[/]: {where}, worker pid {worker.pid}, metrics {url}; "
            f"logs in {RUN_DIR}/ (demo.log, worker.log, broker.log).  [b]Ctrl-C stops.[/]\n"
            "A synthetic shop (3 campaigns) feeds the worker; "
            "the demo's ad server shows an ad only when its bid x the worker's multiplier "
            "clears the price."
        )
        asyncio.run(_demo_loop(s, kwargs, rate, url, header))
    except KeyboardInterrupt:
        print("\n[ecom-stream] stopping")
    finally:
        if worker is not None and worker.poll() is None:
            os.kill(worker.pid, signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(worker.pid, signal.SIGKILL)
        if broker is not None:
            broker.stop()
    return 0


async def _demo_loop(
    s: Settings, kwargs: dict[str, Any], rate: float, url: str, header: str = ""
) -> None:
    bidder = DemoBidder()
    throttle = Throttle(rate)
    injected = [0]
    summary = Summary(s, kwargs, url, bidder, throttle, injected, header)
    tasks = [
        asyncio.create_task(
            produce_demo(s, kwargs, rate, bidder=bidder, throttle=throttle, injected=injected)
        ),
        asyncio.create_task(summary.run()),
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
