"""The crash benchmark's moving parts: worker processes watched through their probes,
and a producer of the real events at a steady rate (benchmarks/crash_bench.py)."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import random
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import orjson
from confluent_kafka import Producer
from crash_events import Event, body_of
from kafka_harness import WorkerProcess
from live_support import profile_diff

from online_models.runner import Runner
from streams.app import kafka_client_kwargs
from streams.broker import free_port
from streams.settings import Settings
from streams.topics import create_topics

PROBE_EVERY_S = 0.5


@dataclass
class Life:
    """One worker process from its start to its end."""

    name: str
    proc: WorkerProcess
    port: int
    started: float
    first_processed: float | None = None
    ready_at: float | None = None
    processed: float = 0.0
    generation: int = -1
    lag: dict[str, int] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)
    paused: bool = False
    paused_before_processing: bool = False  # its restart time counts the pause: left out
    ended: bool = False


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=1.5) as response:
            return response.status, bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, bytes(exc.read())


def _total(text: str, metric: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{metric}(?:\{{[^}}]*\}})? (\S+)", text, re.M))


class Fleet:
    """Worker processes `a` and `b`, each life sampled every PROBE_EVERY_S."""

    def __init__(
        self, env: dict[str, str], run_dir: Path, bootstrap: str, static: bool = False
    ) -> None:
        self.env, self.run_dir, self.bootstrap = env, run_dir, bootstrap
        self.static = static  # static group membership: one instance id per worker
        self.settings = Settings.from_env(env)
        self.lives: list[Life] = []
        self.current: dict[str, Life] = {}
        self.progress: list[float] = []  # times at which some worker processed more
        self.window: tuple[float, float] | None = None  # where stalls count
        self.actions: list[tuple[float, str]] = []  # (time, what the chaos did)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wall = time.time() - time.monotonic()
        self._monitor = threading.Thread(target=self._watch, daemon=True)
        self._monitor.start()

    def wall_of(self, monotonic: float) -> int:
        return int((self._wall + monotonic) * 1000)

    def create_topics(self) -> None:
        asyncio.run(create_topics(self.settings, kafka_client_kwargs(self.settings)))

    def start(self, name: str) -> None:
        data = self.run_dir / f"data-{name}"
        data.mkdir(exist_ok=True)
        port = free_port()
        env = {**self.env, "ECOM_WEB_PORT": str(port), "ECOM_DATA_DIR": str(data)}
        if self.static:
            env["ECOM_GROUP_INSTANCE_ID"] = f"worker-{name}"
        log = self.run_dir / f"worker-{name}-{len(self.lives) + 1:02d}.log"
        life = Life(name, WorkerProcess(env, log_path=log), port, time.monotonic())
        with self._lock:
            self.lives.append(life)
            self.current[name] = life

    def kill(self, name: str) -> None:
        life = self.current[name]
        life.proc.kill()
        life.proc.proc.wait(10)
        life.ended = True

    def stop(self, name: str) -> None:
        life = self.current[name]
        life.proc.stop()
        life.ended = True

    def stop_all(self) -> None:
        for name in list(self.current):
            if not self.current[name].ended:
                self.stop(name)
        self._stop.set()

    def pause(self, name: str) -> None:
        life = self.current[name]
        life.paused = True  # no probing: a stopped process answers nothing
        life.paused_before_processing = life.first_processed is None
        os.kill(life.proc.pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        life = self.current[name]
        os.kill(life.proc.pid, signal.SIGCONT)
        life.paused = False

    def pause_facts(self, name: str) -> tuple[int, int]:
        """(pid, group generation last seen) of a worker."""
        life = self.current[name]
        return life.proc.pid, life.generation

    def _watch(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                lives = [x for x in self.current.values() if not x.ended and not x.paused]
            for life in lives:
                self._probe(life)
            time.sleep(PROBE_EVERY_S)

    def _probe(self, life: Life) -> None:
        base = f"http://127.0.0.1:{life.port}"
        try:
            _, metrics = _get(f"{base}/metrics")
            status, body = _get(f"{base}/readyz")
        except OSError:
            return  # starting, stopping, or paused
        now = time.monotonic()
        text = metrics.decode()
        processed = _total(text, "ecom_events_in_total") + _total(text, "ecom_dead_letters_total")
        generation = re.search(r"^ecom_group_generation (\S+)", text, re.M)
        if generation:
            life.generation = int(float(generation.group(1)))
        if processed > life.processed:
            life.processed = processed
            self.progress.append(now)
            if life.first_processed is None:
                life.first_processed = now
        report = json.loads(body or b"{}")
        life.lag = dict(report.get("lag", {}))
        for reason in report.get("reasons", []):
            life.reasons[str(reason).split(":")[0]] += 1
        if status == 200 and life.ready_at is None:
            life.ready_at = now

    def wait_processing(
        self, name: str, timeout_s: float, idle: Callable[[], bool] = lambda: False
    ) -> None:
        """Until worker `name` processes a record, or `idle()` (nothing more to read)."""
        life = self.current[name]
        deadline = time.monotonic() + timeout_s
        while life.first_processed is None and time.monotonic() < deadline and not idle():
            time.sleep(0.2)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(life.ready_at for life in self.current.values()):
                return
            time.sleep(0.2)

    def wait_processing_any(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.progress and time.monotonic() < deadline:
            time.sleep(0.2)
        self.window = (time.monotonic(), float("inf"))

    def wait_caught_up(self, timeout_s: float, inputs_ended: float | None = None) -> None:
        """Until every input partition is owned with no lag, three samples in a row."""
        deadline = time.monotonic() + timeout_s
        calm = 0
        wanted = 3 * self.settings.partitions
        while time.monotonic() < deadline and calm < 3:
            time.sleep(1.0)
            lag: dict[str, int] = {}
            for life in self.current.values():
                if not life.ended:
                    lag.update(life.lag)
            calm = calm + 1 if len(lag) >= wanted and not any(lag.values()) else 0
        assert self.window is not None
        # Stalls count while records keep coming: until the last was produced, at most.
        self.window = (self.window[0], min(time.monotonic(), inputs_ended or math.inf))
        if calm < 3:
            print(f"[crash] not caught up after {timeout_s:.0f} s", flush=True)

    def act(self, what: str) -> None:
        self.actions.append((time.monotonic(), what))
        print(f"[chaos] {what}", flush=True)

    def stalls(self, n: int = 3) -> list[tuple[float, float, str]]:
        """The `n` longest times inside the window in which no worker processed a record
        (records were produced throughout it): (duration, start since the window
        opened, the chaos action last before it)."""
        if self.window is None:
            return []
        lo, hi = self.window
        marks = [lo] + [t for t in self.progress if lo <= t <= hi] + [hi]
        gaps = sorted(((b - a, a) for a, b in itertools.pairwise(marks)), reverse=True)[:n]
        out = []
        for length, start in gaps:
            before = [what for t, what in self.actions if t <= start + length]
            out.append((round(length, 1), round(start - lo, 1), before[-1] if before else ""))
        return out

    def longest_stall(self) -> float:
        return max((s[0] for s in self.stalls(1)), default=0.0)

    def sample_profiles(self, expected: Runner, n: int, rng: random.Random) -> dict[str, Any]:
        """/profiles of `n` random users, from whichever worker owns them."""
        users = sorted(u for states in expected.states for u in states)
        wrong, missing = [], 0
        for user in rng.sample(users, min(n, len(users))):
            got = None
            for life in self.current.values():
                status, body = _get(f"http://127.0.0.1:{life.port}/profiles/{user}")
                if status == 200:
                    got = orjson.loads(body)["profile"]
                    break
            if got is None:
                missing += 1
                continue
            diff = profile_diff(got, msgspec.to_builtins(expected.profile(user)))
            if diff:
                wrong.append(f"{user}: {diff[:2]}")
        return {"checked": min(n, len(users)), "wrong": len(wrong), "missing": missing,
                "examples": wrong[:5]}  # fmt: skip


class Feeder(threading.Thread):
    """Produces `events` in order at `rate` events/s (librdkafka, an independent client)."""

    def __init__(
        self, bootstrap: str, s: Settings, events: list[Event], rate: float, partitioner: str
    ) -> None:
        super().__init__(daemon=True)
        # murmur2_random: partitioned as Java clients do, as the service expects
        self.producer = Producer(
            {"bootstrap.servers": bootstrap, "linger.ms": 5, "partitioner": partitioner}
        )
        self.topic_of = {
            "campaigns": s.topic_campaigns,
            "clickstream": s.topic_clickstream,
            "orders": s.topic_orders,
            "ad-impressions": s.topic_impressions,
        }
        self.events, self.rate = events, rate
        self.sent = 0
        self.finished_at: float | None = None
        self._halt = threading.Event()

    def send_campaigns(self) -> None:
        for e in self.events:
            if e["topic"] == "campaigns":
                self._send(e)
        self.producer.flush(30)

    def _send(self, e: Event) -> None:
        key = e["campaign_id"] if e["topic"] == "campaigns" else e["user_id"]
        extra = {} if e["topic"] == "campaigns" else {"timestamp": int(e["ts"])}
        body = orjson.dumps(body_of(e))
        self.producer.produce(self.topic_of[e["topic"]], body, str(key).encode(), **extra)

    def run(self) -> None:
        started = time.monotonic()
        for e in self.events:
            if self._halt.is_set():
                break
            if e["topic"] == "campaigns":
                continue  # sent before the workers start reading
            while True:
                try:
                    self._send(e)
                    break
                except BufferError:
                    self.producer.poll(0.1)
            self.sent += 1
            if self.sent % 200 == 0:
                self.producer.poll(0)
                ahead = self.sent / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        self.producer.flush(60)
        self.finished_at = time.monotonic()

    def done(self) -> bool:
        return self.finished_at is not None

    def stop(self) -> None:
        self._halt.set()
