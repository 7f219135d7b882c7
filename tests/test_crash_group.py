"""Two workers in one group, SIGKILLs of a random one while records are produced, a
pause of one past its session (fenced out, then resumed) and a join/leave of a second
worker: every profile must equal one offline pass of the same events; the copies of an
output id agree on the record they stand for (README: same id, first copy wins); the
paused worker writes nothing under its old group generation once it resumes."""

from __future__ import annotations

import os
import random
import re
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from kafka_harness import WorkerProcess, produce, read_all
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

from online_models.outputs import IDENTITY_FIELDS
from streams.broker import free_port

pytestmark = pytest.mark.integration

KILLS = 3


def generation_of(port: str) -> int:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    found = re.search(rb"^ecom_group_generation (\S+)", text, re.M)
    return int(float(found.group(1))) if found else -1


def worker_env(base: dict[str, str], tmp_path: Path, name: str) -> dict[str, str]:
    data_dir = tmp_path / f"data-{name}"
    data_dir.mkdir(exist_ok=True)
    return {**base, "ECOM_WEB_PORT": str(free_port()), "ECOM_DATA_DIR": str(data_dir)}


def chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    size = len(items) // n + 1
    for i in range(0, len(items), size):
        yield items[i : i + size]


def test_kills_pause_and_join_leave_keep_profiles_exact(broker, fast_worker_env, tmp_path):
    env = {**fast_worker_env, "ECOM_SNAPSHOT_EVERY_S": "2"}
    settings = setup_topics(env)
    events = stream(n_users=150, duration_s=3 * 3600, seed=47)
    expected = offline(events, partitions=2)
    users = sorted({str(e["user_id"]) for _, e in events})
    produce(broker.bootstrap, campaign_records(settings))
    rng = random.Random(47)
    envs = {name: worker_env(env, tmp_path, name) for name in ("a", "b")}
    workers: dict[str, WorkerProcess] = {}
    starts = 0

    def start(name: str) -> None:
        nonlocal starts
        starts += 1
        log = tmp_path / f"worker-{name}-{starts}.log"
        workers[name] = WorkerProcess(envs[name], log_path=log)
        workers[name].wait_http(f"http://127.0.0.1:{envs[name]['ECOM_WEB_PORT']}/healthz", 60)

    try:
        start("a")
        start("b")
        parts = list(chunks(events, KILLS + 2))
        for part in parts[:KILLS]:
            produce(broker.bootstrap, records(part, settings))
            victim = rng.choice(sorted(workers))
            workers[victim].kill(signal.SIGKILL)
            workers[victim].proc.wait(10)
            start(victim)
        # Worker a paused past its session while records arrive: b takes every partition;
        # a resumes with fetched records and must not apply them under its old generation.
        paused_pid = workers["a"].pid
        old_generation = generation_of(envs["a"]["ECOM_WEB_PORT"])
        os.kill(paused_pid, signal.SIGSTOP)
        produce(broker.bootstrap, records(parts[KILLS][: len(parts[KILLS]) // 2], settings))
        time.sleep(float(env["ECOM_SESSION_TIMEOUT_S"]) * 1.5 + 2)
        resumed_ms = int(time.time() * 1000)
        os.kill(paused_pid, signal.SIGCONT)
        # A join and a leave of the second worker while records arrive.
        workers["b"].stop()
        produce(broker.bootstrap, records(parts[KILLS][len(parts[KILLS]) // 2 :], settings))
        start("b")
        for part in parts[KILLS + 1 :]:
            produce(broker.bootstrap, records(part, settings))

        def live_profile(user: str) -> dict[str, Any] | None:
            for name in workers:
                url = f"http://127.0.0.1:{envs[name]['ECOM_WEB_PORT']}/profiles/{user}"
                try:
                    got = get_json(url)
                except OSError:  # 503 while its tables recover, or a worker restarting
                    continue
                if got is not None:
                    return dict(got["profile"])
            return None

        def all_equal() -> tuple[bool, str]:
            for user in users:
                live = live_profile(user)
                if live is None:
                    return False, f"{user} missing"
                diff = profile_diff(live, msgspec.to_builtins(expected.profile(user)))
                if diff:
                    return False, f"{user}: {diff[:3]}"
            return True, ""

        poll(all_equal, timeout_s=180, every_s=2)
    finally:
        for worker in workers.values():
            worker.stop()

    copies: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    zombie = []
    for topic in (settings.topic_recommendations, settings.topic_bid_adjustments):
        for msg in read_all(broker.bootstrap, topic):
            body = orjson.loads(msg.value or b"{}")
            copies.setdefault(f"{topic}/{body.get('event_id')}", []).append((msg.partition, body))
            writer = dict(msg.headers).get("ecom-writer")
            assert writer is not None, "every output names its writer"
            pid, _, generation = bytes(writer).decode().partition(":")
            old = int(pid) == paused_pid and int(generation) <= old_generation
            if old and msg.timestamp > resumed_ms:
                zombie.append((topic, msg.partition, msg.offset))
    assert copies, "no outputs written"
    assert not zombie, f"the paused worker wrote under its old generation: {zombie[:5]}"
    conflicts = [
        key
        for key, versions in copies.items()
        if len({(p, *(orjson.dumps(b.get(f)) for f in IDENTITY_FIELDS)) for p, b in versions}) > 1
    ]
    assert not conflicts, f"copies of one id stand for different records: {conflicts[:5]}"
