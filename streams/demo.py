"""`make run`: embedded broker (unless KAFKA_BOOTSTRAP_SERVERS is set), topics, one
worker process and a realistic synthetic stream, with a compact live summary.
Ctrl-C stops the producer, then the worker, then the broker: only what it started."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.broker import EmbeddedBroker, free_port, port_free
from streams.settings import Settings
from streams.topics import create_topics

RUN_DIR = Path(".run")


DAY_MS = 86_400_000
# The synthetic stream's campaigns would spend about 4,080 / 2,740 / 2,010 a day of
# event time if every impression were served (measured over its 6-hour segments);
# their published budgets (600-1,000) were 2-7x smaller, so the budget was gone
# within minutes and every bid read x0.00. The demo budgets are 60 % of that
# natural spend: pacing has to hold bids back, and can (the demo serves only the
# impressions its bids win, below).
DEMO_BUDGETS = {"c1": 2450.0, "c2": 1640.0, "c3": 1200.0}


class DemoBidder:
    """The demo's ad server: it serves an impression only when the impression's bid x
    the engine's multiplier (the user's latest value part x the campaign's latest
    pacing factor, from the bid-adjustment stream) reaches its clearing price, so
    the worker's pacing really controls spend, as a bidder would let it. Keeps
    today's spend per campaign (event time) for the summary."""

    MAX_USERS = 200_000

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], float] = {}
        self.pacing: dict[str, float] = {}
        self.day = -1
        self.spend: dict[str, float] = {}
        self.served = self.offered = 0
        self.clock = 0

    def record(self, adj: dict[str, Any]) -> None:
        factor = float(adj.get("pacing_factor") or 0.0)
        # Every record carries the campaign's factor as of its time, a user's too: a
        # new day's factor arrives with the first re-priced user, not only with the
        # next announcement (which needs an impression, which needs a factor > 0).
        self.pacing[adj["campaign_id"]] = factor
        if adj.get("user_id") is None:
            return
        if len(self.values) >= self.MAX_USERS:
            self.values.clear()
        value = float(adj["multiplier"]) / factor if factor > 0 else 1.0
        self.values[(adj["user_id"], adj["campaign_id"])] = value

    def serve(self, imp: dict[str, Any]) -> bool:
        c = imp["campaign_id"]
        mult = self.values.get((imp["user_id"], c), 1.0) * self.pacing.get(c, 1.0)
        ts = int(imp["ts"])
        self.clock = max(self.clock, ts)
        if ts // DAY_MS > self.day:
            self.day, self.spend = ts // DAY_MS, {}
        self.offered += 1
        cost = float(imp.get("cost", 0.0))
        if float(imp.get("bid", 0.0)) * mult < cost:
            return False
        if self.spend.get(c, 0.0) + cost > DEMO_BUDGETS.get(c, math.inf):
            return False  # an ad server caps spend itself; pacing is what keeps it smooth
        self.served += 1
        self.spend[c] = self.spend.get(c, 0.0) + float(imp.get("cost", 0.0))
        return True


async def produce_demo(
    s: Settings,
    client_kwargs: dict[str, Any],
    rate: float,
    limit: int | None = None,
    seed: int = 7,
    bidder: DemoBidder | None = None,
) -> int:
    """Send campaigns, then a synthetic stream at `rate` events/s (with a few malformed
    records, so the dead-letter path shows), keyed by user id. With a `bidder`, only
    the impressions it wins are sent (and the ad clicks on them)."""
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
        start = time.monotonic()
        unserved: set[str] = set()
        # Event time runs ~200x wall time (click windows close within seconds); it
        # starts at today's UTC midnight so the first budget day is a whole day.
        midnight = int(time.time() * 1000) // DAY_MS * DAY_MS
        for topic, event in _endless(seed, midnight):
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
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0.01:
                await asyncio.sleep(ahead)
    finally:
        await producer.stop()
    return sent


ID_FIELDS = ("user_id", "event_id", "session_id", "impression_id", "order_id")
SEGMENT_S = 6 * 3600  # dense in event time, so click windows (30 min) close within seconds


def _endless(seed: int, start_ms: int) -> Any:
    """Synthetic 6-hour segments back to back, each with its own seed and users."""
    from backtest.synthetic import generate

    while True:
        for topic, event in generate(
            n_users=500, duration_s=SEGMENT_S, seed=seed, start_ms=start_ms
        ):
            for key in ID_FIELDS:  # ids restart per segment: keep them unique
                if key in event:
                    event[key] = f"{event[key]}-{seed}"
            yield topic, event
        seed += 1
        start_ms += SEGMENT_S * 1000


class Summary:
    """Counts output topics from their end and scrapes the worker's /metrics."""

    def __init__(
        self,
        s: Settings,
        client_kwargs: dict[str, Any],
        metrics_url: str,
        bidder: DemoBidder | None = None,
    ) -> None:
        self.s = s
        self.kwargs = client_kwargs
        self.url = metrics_url
        self.bidder = bidder
        self.counts = {"recommendations": 0, "bid-adjustments": 0, "dead-letter": 0}
        self.samples: dict[str, Any] = {}

    async def run(self, every_s: float = 2.0) -> None:
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
        last = (time.monotonic(), 0.0, 0)
        try:
            while True:
                deadline = time.monotonic() + every_s
                while time.monotonic() < deadline:
                    for tp, msgs in (await consumer.getmany(timeout_ms=200)).items():
                        name = names[tp.topic]
                        self.counts[name] += len(msgs)
                        self.samples[name] = msgs[-1].value
                        if name == "bid-adjustments" and self.bidder is not None:
                            for msg in msgs:
                                self.bidder.record(orjson.loads(msg.value))
                last = self.print(last)
        finally:
            await consumer.stop()

    def print(self, last: tuple[float, float, int]) -> tuple[float, float, int]:
        scraped = _scrape(self.url)
        now = time.monotonic()
        events_in = scraped.get("in", 0.0)
        out = sum(self.counts.values())
        dt = max(now - last[0], 1e-6)
        rate_in, rate_out = (events_in - last[1]) / dt, (out - last[2]) / dt
        print(
            f"[ecom-stream] in {rate_in:7.0f}/s  out {rate_out:6.0f}/s"
            f"  recs {self.counts['recommendations']}  bids {self.counts['bid-adjustments']}"
            f"  dead-letters {self.counts['dead-letter']}  click AUC {scraped.get('auc', 'n/a')}"
            f"  log-loss {scraped.get('logloss', 'n/a')}",
            flush=True,
        )
        for name in ("recommendations", "bid-adjustments"):
            if name in self.samples:
                print(f"    {name[:-1]}: {_brief(self.samples[name])}", flush=True)
        if self.bidder is not None:
            print(f"    pacing: {_pacing_line(self.bidder, scraped)}", flush=True)
        return now, events_in, out


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


def _pacing_line(bidder: DemoBidder, scraped: dict[str, Any]) -> str:
    """Per campaign: today's spend / budget (and the even-spend target by now), the
    pacing factor the worker reports; then the share of impressions won."""
    share = (bidder.clock % DAY_MS) / DAY_MS
    hhmm = time.strftime("%H:%M", time.gmtime(bidder.clock / 1000))
    parts = []
    for c, budget in sorted(DEMO_BUDGETS.items()):
        spend = bidder.spend.get(c, 0.0)
        factor = scraped.get("pacing", {}).get(c, bidder.pacing.get(c, 1.0))
        parts.append(f"{c} {spend:.0f}/{budget:.0f} (even {budget * share:.0f}) x{factor:.2f}")
    won = bidder.served / bidder.offered if bidder.offered else 0.0
    lag = scraped.get("lag")
    behind = f"  worker lag {lag:.0f} records" if lag is not None else ""
    return f"day {hhmm} UTC  " + "  ".join(parts) + f"  won {won:.0%}{behind}"


def _brief(raw: bytes) -> str:
    d = orjson.loads(raw)
    if "items" in d:
        items = ", ".join(i["item_id"] for i in d["items"][:5])
        return f"user {d['user_id']} -> [{items}, ...] ({d['strategy']})"
    return (
        f"user {d['user_id']} campaign {d['campaign_id']} x{d['multiplier']:.2f} "
        f"(p_click {d['p_click']}, pacing {d['pacing_factor']:.2f}, {d['reason']})"
    )


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (e.g. `timeout`) stops what we started, like Ctrl-C


def run_demo(rate: float) -> int:
    RUN_DIR.mkdir(exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)
    env = dict(os.environ)
    broker = None
    if "KAFKA_BOOTSTRAP_SERVERS" not in env:
        broker = EmbeddedBroker(9092 if port_free(9092) else free_port(), RUN_DIR / "broker.log")
        env.update(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap, ECOM_FETCH_END_OFFSETS="1")
        print(f"[ecom-stream] embedded broker on {broker.bootstrap} (pid {broker.proc.pid})")
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
        print(
            f"[ecom-stream] worker pid {worker.pid}, log {RUN_DIR / 'worker.log'}, "
            f"metrics http://{s.web_host}:{s.web_port}/metrics  (Ctrl-C stops)"
        )
        url = f"http://{s.web_host}:{s.web_port}/metrics"
        asyncio.run(_demo_loop(s, kwargs, rate, url))
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


async def _demo_loop(s: Settings, kwargs: dict[str, Any], rate: float, url: str) -> None:
    bidder = DemoBidder()
    summary = Summary(s, kwargs, url, bidder)
    tasks = [
        asyncio.create_task(produce_demo(s, kwargs, rate, bidder=bidder)),
        asyncio.create_task(summary.run()),
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
