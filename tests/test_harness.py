"""The broker harness itself: start, topics, produce/read round trip, stop, failure modes."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2
from kafka_harness import WorkerProcess, create_topics, produce, read_all, wait_for

from streams.broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.integration
T0 = 1_700_000_000_000


def _topic() -> str:
    return f"harness-{uuid.uuid4().hex[:8]}"


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_broker_answers_on_loopback(broker: EmbeddedBroker) -> None:
    host, port = broker.bootstrap.split(":")
    assert host == "127.0.0.1" and broker.running()
    socket.create_connection((host, int(port)), timeout=2).close()


def test_produce_then_read_all_round_trips_with_java_partitioning(broker: EmbeddedBroker) -> None:
    topic = _topic()
    create_topics(broker.bootstrap, {topic: 4})
    create_topics(broker.bootstrap, {topic: 4})  # already exists: not an error
    sent = {f"user-{i % 97}-{i}".encode(): (f"v{i}".encode(), T0 + i * 1000) for i in range(1000)}
    records = [(topic, key, value, ts) for key, (value, ts) in sent.items()]
    assert produce(broker.bootstrap, records) == 1000

    got = read_all(broker.bootstrap, topic)
    assert len(got) == 1000
    partitioner = DefaultPartitioner()
    for m in got:
        assert m.key is not None and m.topic == topic
        assert (m.value, m.timestamp) == sent[m.key]
        # librdkafka's murmur2_random must agree with aiokafka/the Java client.
        assert m.partition == (murmur2(m.key) & 0x7FFFFFFF) % 4
        assert m.partition == partitioner(m.key, [0, 1, 2, 3], [0, 1, 2, 3])
    for p in range(4):
        offsets = [m.offset for m in got if m.partition == p]
        assert offsets == list(range(len(offsets))) and offsets, p


def test_read_all_of_an_unknown_topic_is_empty(broker: EmbeddedBroker) -> None:
    assert read_all(broker.bootstrap, _topic(), timeout_s=5) == []


def test_wait_for_returns_records_or_explains_the_timeout(broker: EmbeddedBroker) -> None:
    topic = _topic()
    create_topics(broker.bootstrap, {topic: 2})
    produce(broker.bootstrap, [(topic, b"k", b"hello", None)])
    got = wait_for(broker.bootstrap, topic, lambda rs: any(m.value == b"hello" for m in rs), 10)
    assert got[0].timestamp > T0  # no timestamp given: stamped with the current time
    began = time.monotonic()
    with pytest.raises(AssertionError, match=rf"{topic}.*1 records.*hello"):
        wait_for(broker.bootstrap, topic, lambda rs: len(rs) > 1, timeout_s=1)
    assert time.monotonic() - began < 8


def test_stop_kills_that_broker_process_only(broker: EmbeddedBroker) -> None:
    other = EmbeddedBroker()
    assert other.bootstrap != broker.bootstrap and not _gone(other.pid)
    other.stop()
    assert not other.running() and _gone(other.pid)
    assert broker.running()


def test_a_missing_binary_raises_instead_of_skipping() -> None:
    with pytest.raises(RuntimeError, match="cannot start"):
        EmbeddedBroker(binary="/nonexistent/tansu")


def test_an_unresolvable_binary_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALF_TANSU_BIN", "/nonexistent/tansu")
    with pytest.raises(RuntimeError, match="cannot resolve"):
        EmbeddedBroker()


def test_a_crashing_broker_raises_with_its_stderr(tmp_path: Path) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'address already in use' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(RuntimeError, match=r"exited with 3:\naddress already in use"):
        EmbeddedBroker(binary=str(fake))


def test_a_silent_broker_times_out_and_is_killed(tmp_path: Path) -> None:
    fake = tmp_path / "tansu"
    pid_file = tmp_path / "pid"
    fake.write_text(f"#!/bin/sh\necho $$ > {pid_file}\necho starting\nexec sleep 60\n")
    fake.chmod(0o755)
    with pytest.raises(RuntimeError, match=r"not ready after 1.0s[\s\S]*starting"):
        EmbeddedBroker(binary=str(fake), ready_timeout_s=1.0)
    assert _gone(int(pid_file.read_text()))


def test_worker_process_logs_serves_and_stops(tmp_path: Path) -> None:
    port = free_port()
    argv = [
        sys.executable,
        "-c",
        "print('booting', flush=True); import http.server as h; "
        f"h.HTTPServer(('127.0.0.1', {port}), h.SimpleHTTPRequestHandler).serve_forever()",
    ]
    log = tmp_path / "worker.log"
    with WorkerProcess({"ECOM_MARKER": "1"}, cwd=tmp_path, log_path=log, argv=argv) as worker:
        assert worker.wait_http(f"http://127.0.0.1:{port}/", timeout_s=10)
        assert "booting" in worker.log_tail()
        assert worker.stop() == -signal.SIGTERM
    assert _gone(worker.pid)


def test_worker_process_that_exits_fails_wait_http(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import os, sys; print(os.environ['ECOM_MARKER']); sys.exit(2)"]
    env = {"ECOM_MARKER": "marker-42"}
    worker = WorkerProcess(env, cwd=tmp_path, log_path=tmp_path / "w.log", argv=argv)
    with pytest.raises(AssertionError, match=r"exited with 2[\s\S]*marker-42"):
        worker.wait_http(f"http://127.0.0.1:{free_port()}/", timeout_s=10)
    worker.kill(signal.SIGKILL)  # already gone: a no-op, not an error


def test_fast_worker_env_is_isolated(
    fast_worker_env: dict[str, str], broker: EmbeddedBroker
) -> None:
    assert fast_worker_env["KAFKA_BOOTSTRAP_SERVERS"] == broker.bootstrap
    assert Path(fast_worker_env["ECOM_DATA_DIR"]).is_dir()
    assert fast_worker_env["ECOM_APP_ID"].startswith("ecom-test-")
    assert float(fast_worker_env["ECOM_SESSION_TIMEOUT_S"]) <= 6
