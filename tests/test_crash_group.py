"""Two workers in one group, SIGKILLs of a random one while records are produced and a
join/leave of a second worker: every profile must equal one offline pass of the same
events, and no recommendation id may repeat with a different payload."""

from __future__ import annotations

import random
import signal
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

from streams.broker import free_port

pytestmark = pytest.mark.integration

KILLS = 3


def worker_env(base: dict[str, str], tmp_path: Path, name: str) -> dict[str, str]:
    data_dir = tmp_path / f"data-{name}"
    data_dir.mkdir(exist_ok=True)
    return {**base, "ECOM_WEB_PORT": str(free_port()), "ECOM_DATA_DIR": str(data_dir)}


def chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    size = len(items) // n + 1
    for i in range(0, len(items), size):
        yield items[i : i + size]


def test_kills_and_join_leave_keep_profiles_exact(broker, fast_worker_env, tmp_path):
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
        # A join and a leave of the second worker while records arrive.
        workers["b"].stop()
        produce(broker.bootstrap, records(parts[KILLS], settings))
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

    payloads: dict[str, bytes] = {}
    differing = []
    for msg in read_all(broker.bootstrap, settings.topic_recommendations):
        body = orjson.loads(msg.value or b"{}")
        event_id = str(body.get("event_id"))
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        if payloads.setdefault(event_id, canonical) != canonical:
            differing.append(event_id)
    assert payloads, "no recommendations written"
    assert not differing, f"{len(differing)} ids repeat with a different payload: {differing[:5]}"
