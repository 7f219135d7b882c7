"""A rebalance that hits changelog recovery must not crash a worker.

Two workers share a group whose table changelog is long enough that recovery takes
seconds. Workers are started and SIGKILLed while the other one is recovering, so each
rebalance lands in the middle of a recovery; no worker may crash (the issue's
`ValueError('Offset must be a positive integer')` from a seek), and once the storm is
over every profile equals one offline pass of the same events."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import msgspec
import orjson
import pytest
from kafka_harness import WorkerProcess, produce
from live_support import (
    campaign_records,
    get_json,
    offline,
    poll,
    profile_diff,
    records,
    setup_topics,
    stream,
)
from seek_probe import MARK as INVALID_SEEK

from online_models.partitioning import partition_for
from online_models.state import encode_state
from streams.broker import free_port

pytestmark = pytest.mark.integration

# Changelog records written before the first worker starts: enough that recovering a
# partition takes seconds on the embedded broker, so rebalances can land inside it.
FILLER_RECORDS = 30_000
FILLER_KEYS = 40  # repeated keys: a long changelog, a small table
RECOVERING = "Restoring state from changelog topics"
# What a crash, or the seek that crashed a worker in the issue, looks like in a
# worker's log: mode logs "Crashed reason=..." for a service or agent that raised, and
# the probe the workers run under logs every seek aiokafka refuses.
CRASH_MARKS = ("Offset must be a positive integer", "Crashed reason=", INVALID_SEEK)
PROBED_WORKER = [sys.executable, str(Path(__file__).with_name("seek_probe.py"))]


def worker_env(base: dict[str, str], tmp_path: Path, name: str) -> dict[str, str]:
    data_dir = tmp_path / f"data-{name}"
    data_dir.mkdir()
    return {**base, "ECOM_WEB_PORT": str(free_port()), "ECOM_DATA_DIR": str(data_dir)}


def recoveries(worker: WorkerProcess) -> int:
    return worker.log_path.read_text(errors="replace").count(RECOVERING)


def wait_recovering(worker: WorkerProcess, more_than: int, timeout_s: float = 60.0) -> None:
    """Until `worker` has started more than `more_than` recoveries."""
    poll(lambda: (recoveries(worker) > more_than, worker.log_tail(5)), timeout_s, 0.05)


def crashes(log: Path) -> list[str]:
    """Crash lines of every run of a worker (its runs append to one log)."""
    lines = log.read_text(errors="replace").splitlines()
    return [line for line in lines if any(mark in line for mark in CRASH_MARKS)]


def test_rebalances_during_changelog_recovery_crash_no_worker(broker, fast_worker_env, tmp_path):
    base_env = {**fast_worker_env, "ECOM_SNAPSHOT_EVERY_S": "2"}
    settings = setup_topics(base_env)
    events = stream(n_users=120, duration_s=3 * 3600, seed=47)
    half = len(events) // 2
    expected = offline(events, partitions=2)
    users = sorted({str(e["user_id"]) for _, e in events})
    produce(broker.bootstrap, campaign_records(settings))

    # Filler states under keys no event uses: they lengthen recovery, not the check.
    # (Faust's table keys are JSON, values our raw state bytes.)
    sample = next(iter(expected.states[0].values()))
    changelog = f"{settings.app_id}-users-changelog"
    filler = encode_state(sample)
    produce(
        broker.bootstrap,
        ((changelog, orjson.dumps(f"filler-{i % FILLER_KEYS}"), filler, 0)
         for i in range(FILLER_RECORDS)),
    )  # fmt: skip

    env_a = worker_env(base_env, tmp_path, "a")
    env_b = worker_env(base_env, tmp_path, "b")
    logs = {"a": tmp_path / "worker-a.log", "b": tmp_path / "worker-b.log"}
    started: list[WorkerProcess] = []

    def start(name: str) -> WorkerProcess:
        env = env_a if name == "a" else env_b
        worker = WorkerProcess(env, log_path=logs[name], argv=PROBED_WORKER)
        started.append(worker)
        return worker

    try:
        a = start("a")
        wait_recovering(a, 0)
        # 1: B joins while A recovers both partitions.
        b = start("b")
        produce(broker.bootstrap, records(events[:half], settings))
        wait_recovering(b, 0)
        # 2: A dies while B recovers; B takes over A's partition, recovering again.
        seen_b = recoveries(b)
        a.kill(signal.SIGKILL)
        a.proc.wait(10)
        wait_recovering(b, seen_b)
        # 3: A comes back while B recovers A's old partition.
        seen_b = recoveries(b)
        a = start("a")
        wait_recovering(b, seen_b)
        produce(broker.bootstrap, records(events[half:], settings))

        workers = {"a": a, "b": b}
        urls = {
            name: f"http://127.0.0.1:{env['ECOM_WEB_PORT']}"
            for name, env in (("a", env_a), ("b", env_b))
        }
        for name, worker in workers.items():
            worker.wait_http(f"{urls[name]}/readyz", timeout_s=90)

        def owner(partition: int) -> str | None:
            for name, url in urls.items():
                if str(partition) in (get_json(f"{url}/models") or {}).get("partitions", {}):
                    return name
            return None

        def all_equal() -> tuple[bool, str]:
            for name, worker in workers.items():
                assert worker.running(), f"worker {name} exited:\n{worker.log_tail()}"
            owners = {p: owner(p) for p in range(settings.partitions)}
            if None in owners.values():
                return False, f"partition owners {owners}"
            for user in users:
                p = partition_for(user.encode(), settings.partitions)
                live = get_json(f"{urls[owners[p]]}/profiles/{user}")  # type: ignore[index]
                if live is None:
                    return False, f"{user} missing on {owners[p]}"
                want = msgspec.to_builtins(expected.profile(user))
                diff = profile_diff(live["profile"], want)
                if diff:
                    return False, f"{user}: {diff[:3]}"
            return True, ""

        poll(all_equal, timeout_s=120, every_s=2)
        time.sleep(1.0)  # a crash logged right after the last check still counts
        for name, worker in workers.items():
            assert worker.running(), f"worker {name} exited:\n{worker.log_tail()}"
        found = {name: crashes(path) for name, path in logs.items()}
        assert found == {"a": [], "b": []}, found
    finally:
        for worker in started:
            worker.stop()
