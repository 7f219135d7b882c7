"""Issue #12 against the real worker and the embedded broker: poison records never
stall a partition, the probes tell the truth, the lag gauge is the real backlog, views
serve only owned partitions, and start-up and shutdown behave."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from kafka_harness import PROJECT_ROOT, WorkerProcess, produce, wait_for
from live_support import poll, setup_topics
from prometheus_client.parser import text_string_to_metric_families

from online_models.config import DAY_MS, EngineConfig
from online_models.outputs import DeadLetter
from online_models.partitioning import partition_for
from streams.app import kafka_client_kwargs
from streams.broker import EmbeddedBroker, free_port
from streams.metrics import Metrics
from streams.runtime_factory import build_runtime
from streams.state_store import StateStore

pytestmark = pytest.mark.integration


def http(url: str) -> tuple[int, Any]:
    """(status, decoded JSON body), for 2xx and error answers alike."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def metric(base: str, name: str) -> float:
    text = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{name} not exported")


def view(user: str, n: int, ts: int) -> dict[str, Any]:
    return {"event_id": f"{user}-v{n}", "ts": ts, "user_id": user, "type": "view",
            "item_id": f"i{n}", "category": "shoes", "price": 10.0}  # fmt: skip


def test_poison_records_between_valid_events_never_stall_the_partition(
    broker: EmbeddedBroker, fast_worker_env: dict[str, str], tmp_path: Path
) -> None:
    """A record nested 1,000 deep, a view a year ahead and a null value, between valid
    events of one user: the later events are applied within seconds, the three poison
    records are dead letters, and the agent never crashed."""
    env = fast_worker_env
    settings = setup_topics(env)
    base = f"http://127.0.0.1:{env['ECOM_WEB_PORT']}"
    user, topic = "poisoned-user", settings.topic_clickstream
    key = user.encode()
    now = int(time.time() * 1000)
    deep = orjson.dumps(view(user, 99, now))[:-1] + b',"x":' + b"[" * 1000 + b"]" * 1000 + b"}"
    future = orjson.dumps(view(user, 98, now + 365 * DAY_MS))
    first = [(topic, key, orjson.dumps(view(user, 0, now)), None)]
    poison = [(topic, key, deep, None), (topic, key, future, None), (topic, key, None, None)]
    after = [(topic, key, orjson.dumps(view(user, n, now + n * 1000)), None) for n in range(1, 6)]
    with WorkerProcess(env, log_path=tmp_path / "worker.log") as worker:
        worker.wait_http(f"{base}/readyz", timeout_s=60)
        produce(broker.bootstrap, first + poison + after)  # type: ignore[arg-type]
        began = time.monotonic()

        def applied() -> tuple[bool, str]:
            status, body = http(f"{base}/profiles/{user}")
            views = body.get("profile", {}).get("totals", {}).get("view", 0) if body else 0
            return views == 6, f"{status}: {views} of 6 views applied"

        poll(applied, timeout_s=20, every_s=0.2)
        took = time.monotonic() - began
        dead = wait_for(broker.bootstrap, settings.topic_dead_letter, lambda r: len(r) >= 3, 20)
        crashes = metric(base, "ecom_agent_crashes_total")
        live, _ = http(f"{base}/healthz")
    letters = [msgspec.json.decode(d.value, type=DeadLetter) for d in dead]
    assert sorted(d.reason for d in letters) == ["empty_value", "future_timestamp", "too_deep"]
    assert {d.source_topic for d in letters} == {topic}
    assert crashes == 0 and live == 200
    assert "agent crashed" not in worker.log_path.read_text()
    assert took < 20


def test_readiness_follows_the_broker_through_a_pause(
    broker: EmbeddedBroker, fast_worker_env: dict[str, str], tmp_path: Path
) -> None:
    """SIGSTOP the broker: /readyz turns 503 naming the broker while /healthz stays
    200 (a restart would not help); SIGCONT: ready again."""
    env = {**fast_worker_env, "ECOM_LAG_REFRESH_S": "0.5", "ECOM_BROKER_TIMEOUT_S": "3"}
    setup_topics(env)
    base = f"http://127.0.0.1:{env['ECOM_WEB_PORT']}"
    with WorkerProcess(env, log_path=tmp_path / "worker.log") as worker:
        worker.wait_http(f"{base}/readyz", timeout_s=60)
        os.kill(broker.pid, signal.SIGSTOP)
        try:
            poll(lambda: (http(f"{base}/readyz")[0] == 503, "still ready"), 15, every_s=0.25)
            _, body = http(f"{base}/readyz")
            assert any(r.startswith("broker_unreachable") for r in body["reasons"]), body
            assert http(f"{base}/healthz")[0] == 200
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        poll(lambda: (http(f"{base}/readyz")[0] == 200, str(http(f"{base}/readyz"))), 60, 0.5)


def test_consumer_lag_is_the_backlog_read_from_the_broker(
    broker: EmbeddedBroker, fast_worker_env: dict[str, str]
) -> None:
    """The gauge is log end minus the next offset to process, read from the broker by
    the refresh (not sampled from what flowed): it equals the backlog produced, also
    when nothing is processed, and follows processing down to zero."""
    settings = setup_topics(fast_worker_env)
    topic = settings.topic_clickstream
    per_partition = {0: 0, 1: 0}
    records = []
    for n in range(60):
        user = f"lag-user-{n}"
        per_partition[partition_for(user.encode(), 2)] += 1
        records.append((topic, user.encode(), orjson.dumps(view(user, n, 1_700_000_000_000)), None))
    produce(broker.bootstrap, records)
    runtime = build_runtime(
        settings, EngineConfig(), Metrics(), kafka_client_kwargs(settings), StateStore({}), {}
    )
    for p in (0, 1):
        runtime.guard.start((topic, p), 0)

    def lag(p: int) -> float:
        return runtime.metrics.consumer_lag.labels(topic, str(p))._value.get()

    asyncio.run(runtime.lag.refresh())
    assert [lag(0), lag(1)] == [per_partition[0], per_partition[1]]
    for offset in range(10):
        runtime.guard.processed((topic, 0), offset)
    asyncio.run(runtime.lag.refresh())
    assert lag(0) == per_partition[0] - 10
    assert runtime.health.readiness(recovering=False) == []


def test_live_lag_falls_to_zero_once_the_backlog_is_processed(
    broker: EmbeddedBroker, fast_worker_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**fast_worker_env, "ECOM_LAG_REFRESH_S": "0.5"}
    settings = setup_topics(env)
    base = f"http://127.0.0.1:{env['ECOM_WEB_PORT']}"
    topic = settings.topic_clickstream
    now = int(time.time() * 1000)
    records = [(topic, f"u{n % 7}".encode(), orjson.dumps(view(f"u{n % 7}", n, now + n)), None)
               for n in range(300)]  # fmt: skip
    with WorkerProcess(env, log_path=tmp_path / "worker.log") as worker:
        worker.wait_http(f"{base}/readyz", timeout_s=60)
        produce(broker.bootstrap, records)

        def caught_up() -> tuple[bool, str]:
            _, body = http(f"{base}/readyz")
            lags = {k: v for k, v in body["lag"].items() if k.startswith(topic)}
            return len(lags) == 2 and not any(lags.values()), str(lags)

        poll(caught_up, timeout_s=40, every_s=0.5)


def test_profiles_are_served_only_by_the_owner(
    broker: EmbeddedBroker, fast_worker_env: dict[str, str], tmp_path: Path
) -> None:
    """Two workers, one partition each: the owner answers, the other worker (which may
    hold a standby copy) answers 404 naming the partition."""
    env = fast_worker_env
    settings = setup_topics(env)
    ports = [env["ECOM_WEB_PORT"], str(free_port())]
    users = [f"owner-test-{n}" for n in range(40)]
    now = int(time.time() * 1000)
    recs = [(settings.topic_clickstream, u.encode(), orjson.dumps(view(u, 1, now)), None)
            for u in users]  # fmt: skip
    env2 = {**env, "ECOM_WEB_PORT": ports[1], "ECOM_DATA_DIR": str(tmp_path / "w2-data")}
    with (
        WorkerProcess(env, log_path=tmp_path / "w1.log") as w1,
        WorkerProcess(env2, log_path=tmp_path / "w2.log") as w2,
    ):
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for w, b in zip((w1, w2), bases, strict=True):
            w.wait_http(f"{b}/readyz", timeout_s=90)

        def split() -> tuple[bool, str]:
            owned = [len((http(f"{b}/models")[1] or {}).get("partitions", {})) for b in bases]
            ready = [http(f"{b}/readyz")[0] for b in bases]
            return owned == [1, 1] and ready == [200, 200], f"engines {owned}, ready {ready}"

        poll(split, timeout_s=90, every_s=1)
        produce(broker.bootstrap, recs)
        time.sleep(3)
        answers = {u: [http(f"{b}/profiles/{u}") for b in bases] for u in users}
    for user, pair in answers.items():
        statuses = sorted(status for status, _ in pair)
        assert statuses == [200, 404], (user, pair)
        partition = partition_for(user.encode(), 2)
        for status, body in pair:
            assert body["partition"] == partition
            if status == 404:
                assert f"partition {partition} is not owned" in body["error"]


def test_a_worker_starts_in_a_directory_without_run(
    broker: EmbeddedBroker, fast_worker_env: dict[str, str], tmp_path: Path
) -> None:
    """The default data dir `.run/worker-data` is created with its parents."""
    env = {k: v for k, v in fast_worker_env.items() if k != "ECOM_DATA_DIR"}
    setup_topics(env)
    cwd = tmp_path / "fresh-clone"
    cwd.mkdir()
    base = f"http://127.0.0.1:{env['ECOM_WEB_PORT']}"
    with WorkerProcess(env, cwd=cwd, log_path=tmp_path / "worker.log") as worker:
        worker.wait_http(f"{base}/readyz", timeout_s=60)
    assert (cwd / ".run" / "worker-data").is_dir()


def test_sigterm_stops_a_worker_within_ten_seconds_with_the_broker_gone(
    fast_worker_env: dict[str, str], tmp_path: Path
) -> None:
    own = EmbeddedBroker()  # this test kills its broker: not the shared one
    try:
        env = {**fast_worker_env, "KAFKA_BOOTSTRAP_SERVERS": own.bootstrap}
        settings = setup_topics(env)
        base = f"http://127.0.0.1:{env['ECOM_WEB_PORT']}"
        now = int(time.time() * 1000)
        recs = [(settings.topic_clickstream, b"u1", orjson.dumps(view("u1", n, now + n)), None)
                for n in range(50)]  # fmt: skip
        with WorkerProcess(env, log_path=tmp_path / "worker.log") as worker:
            worker.wait_http(f"{base}/readyz", timeout_s=60)
            produce(own.bootstrap, recs)
            time.sleep(1)
            own.stop()
            time.sleep(1)
            began = time.monotonic()
            worker.kill(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.proc.wait(timeout=15)
            took = time.monotonic() - began
            assert not worker.running(), f"still running {took:.1f}s after SIGTERM"
        assert took <= 10.0, took
    finally:
        own.stop()


@pytest.mark.parametrize("command", ["worker", "create-topics", "produce", "produce-demo"])
def test_an_unreachable_broker_is_one_clear_line_and_exit_code_2(
    command: str, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"topic": "clickstream", **view("u", 1, 1)}) + "\n")
    argv = {"produce": ["produce", str(events), "--speed", "max"]}.get(command, [command])
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": address, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run([sys.executable, "-m", "ecom_cli", *argv], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1, done.stderr[-2000:]
    assert address in lines[0] and "KAFKA_BOOTSTRAP_SERVERS" in lines[0]
    assert "Traceback" not in done.stderr + done.stdout
