"""Redelivery after a crash must not double-count: SIGKILL the worker mid-stream,
twice, restart it, and every profile must equal one offline pass of the same events."""

from __future__ import annotations

import signal

import msgspec
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

pytestmark = pytest.mark.integration


def test_sigkill_twice_loses_nothing_and_counts_once(broker, fast_worker_env, tmp_path):
    env = {**fast_worker_env, "ECOM_SNAPSHOT_EVERY_S": "2"}
    settings = setup_topics(env)
    base = f"http://127.0.0.1:{env['ECOM_WEB_PORT']}"
    events = stream(n_users=200, duration_s=4 * 3600, seed=31)
    third = len(events) // 3
    chunks = [events[:third], events[third : 2 * third], events[2 * third :]]
    expected = offline(events, partitions=2)
    users = sorted({str(e["user_id"]) for _, e in events})
    produce(broker.bootstrap, campaign_records(settings))

    def processed() -> int:
        models = get_json(f"{base}/models") or {"partitions": {}}
        return sum(p["events"] for p in models["partitions"].values())

    kills = 0
    for i, chunk in enumerate(chunks[:2]):
        worker = WorkerProcess(env, log_path=tmp_path / f"worker-{i}.log")
        worker.wait_http(f"{base}/readyz", timeout_s=60)
        start = processed()
        produce(broker.bootstrap, records(chunk, settings))
        # Kill while the chunk is still being worked through: after some, before all.
        poll(lambda s=start: (processed() > s + 200, f"processed {processed()}"), 60, 0.1)
        assert processed() < start + len(chunk), "chunk finished before the kill"
        worker.kill(signal.SIGKILL)
        worker.proc.wait(10)
        kills += 1

    worker = WorkerProcess(env, log_path=tmp_path / "worker-final.log")
    try:
        worker.wait_http(f"{base}/readyz", timeout_s=60)
        produce(broker.bootstrap, records(chunks[2], settings))

        def all_equal() -> tuple[bool, str]:
            for user in users:
                live = get_json(f"{base}/profiles/{user}")
                if live is None:
                    return False, f"{user} missing"
                diff = profile_diff(live["profile"], msgspec.to_builtins(expected.profile(user)))
                if diff:
                    return False, f"{user}: {diff[:3]}"
            return True, ""

        poll(all_equal, timeout_s=180, every_s=2)
        metrics = worker.wait_http(f"{base}/metrics").decode()
    finally:
        worker.stop()
    assert kills == 2
    assert "ecom_duplicates_skipped_total" in metrics
