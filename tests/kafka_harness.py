"""Test harness: the embedded broker (streams.broker), topic/produce/read helpers with an
independent client (librdkafka) and a worker process.

Everything here fails loudly: a broker that cannot start raises RuntimeError, so
integration tests fail instead of silently skipping.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import DEVNULL, Popen

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer
from confluent_kafka import TopicPartition as TP
from confluent_kafka.admin import AdminClient, NewTopic

from streams.broker import tail as _tail
from streams.broker import terminate

PROJECT_ROOT = Path(__file__).resolve().parents[1]
Record = tuple[str, bytes | None, bytes, int | None]  # topic, key, value, timestamp ms


def _temp_log(prefix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".log")
    os.close(fd)
    return Path(name)


def create_topics(bootstrap: str, names: Mapping[str, int], timeout_s: float = 15.0) -> None:
    """Create topics with explicit partition counts; existing topics are left alone."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in names.items()]
    for name, future in admin.create_topics(new, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"cannot create topic {name!r}: {exc}") from exc
    # Creation is acknowledged before every client sees it; wait for the metadata.
    deadline = time.monotonic() + timeout_s
    while True:
        topics = admin.list_topics(timeout=timeout_s).topics
        if all(t in topics and topics[t].partitions for t in names):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"topics {sorted(names)} not visible after {timeout_s}s")
        time.sleep(0.1)


def produce(bootstrap: str, records: Iterable[Record], timeout_s: float = 30.0) -> int:
    """Send records and flush; keys are partitioned like the Java client and aiokafka."""
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                         "linger.ms": 5})  # fmt: skip
    errors: list[str] = []

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    count = 0
    for topic, key, value, ts in records:
        while True:
            try:
                # timestamp 0 lets the producer stamp the current time.
                producer.produce(topic, value, key, timestamp=ts or 0, on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                producer.poll(0.1)
        count += 1
    left = producer.flush(timeout_s)
    if left or errors:
        raise RuntimeError(f"{left} records undelivered, errors: {errors[:5]}")
    return count


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, str | bytes | None]]
    timestamp: int


def read_all(bootstrap: str, topic: str, timeout_s: float = 15.0) -> list[Message]:
    """Every record of every partition up to the current end, by partition and offset.

    Explicit assignment, no group subscription: a group join would stall for as long
    as the broker holds joins, and reading must not disturb the worker's group.
    """
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"harness-{uuid.uuid4().hex}",
        "enable.auto.commit": False, "enable.partition.eof": True,
    })  # fmt: skip
    try:
        meta = consumer.list_topics(timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None:
            return []  # not created yet; wait_for keeps polling
        ends = {p: consumer.get_watermark_offsets(TP(topic, p), timeout=timeout_s)[1]
                for p in meta.partitions}  # fmt: skip
        todo = {p for p, high in ends.items() if high > 0}
        consumer.assign([TP(topic, p, OFFSET_BEGINNING) for p in sorted(todo)])
        out: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while todo:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: no end of partitions {sorted(todo)} in time")
            for msg in consumer.consume(num_messages=1000, timeout=0.2):
                err = msg.error()
                if err is not None and err.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"reading {topic}: {err}")
                p, off = msg.partition(), msg.offset()
                assert p is not None and off is not None, "records and EOFs carry both"
                if err is not None:
                    # Only EOF ends a partition, never "last offset + 1 == high watermark":
                    # Tansu's ListOffsets answers the last *batch's* base offset + 1, and
                    # transaction markers leave the last record below the watermark.
                    todo.discard(p)
                    continue
                h = msg.headers() or []
                headers = list(h.items() if isinstance(h, dict) else h)
                ts = msg.timestamp()[1]
                out.append(Message(topic, p, off, msg.key(), msg.value(), headers, ts))
        return sorted(out, key=lambda m: (m.partition, m.offset))
    finally:
        consumer.close()


def wait_for(
    bootstrap: str, topic: str, predicate: Callable[[list[Message]], bool], timeout_s: float
) -> list[Message]:
    """Poll `read_all` until `predicate(records)` holds; AssertionError with a summary."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = read_all(bootstrap, topic, timeout_s=max(1.0, min(10.0, timeout_s)))
        if predicate(records):
            return records
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    last = [(m.partition, m.offset, (m.value or b"")[:120]) for m in records[-3:]]
    raise AssertionError(
        f"{topic}: condition not met within {timeout_s}s; {len(records)} records, last: {last}"
    )


class WorkerProcess:
    """`python -m ecom_cli worker` as a subprocess; its `log_path` outlives stop()."""

    def __init__(
        self,
        env: Mapping[str, str],
        cwd: str | Path = PROJECT_ROOT,
        log_path: str | Path | None = None,
        argv: Sequence[str] | None = None,
    ) -> None:
        self.log_path = Path(log_path) if log_path else _temp_log("worker-")
        full_env = {**os.environ, **{k: str(v) for k, v in env.items()}, "PYTHONUNBUFFERED": "1"}
        # The project may not be installed: make it importable from any cwd; unbuffered
        # so that log_tail() shows what happened right before a failure.
        paths = [str(PROJECT_ROOT), full_env.get("PYTHONPATH", "")]
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        self.argv = list(argv or [sys.executable, "-m", "ecom_cli", "worker"])
        with open(self.log_path, "ab") as log:
            self.proc = Popen(
                self.argv, env=full_env, cwd=cwd, stdin=DEVNULL, stdout=log, stderr=log
            )
        self.pid = self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.running():
            self.proc.send_signal(sig)

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM, then SIGKILL after `timeout_s`; returns the exit code."""
        return terminate(self.proc, grace_s=timeout_s)

    def log_tail(self, n: int = 40) -> str:
        return _tail(self.log_path, n)

    def wait_http(self, url: str, timeout_s: float = 30.0) -> bytes:
        """Body of the first 2xx answer from `url`; fails early if the worker exits."""
        deadline = time.monotonic() + timeout_s
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if not self.running():
                code, tail = self.proc.returncode, self.log_tail()
                raise AssertionError(f"worker exited with {code} before {url} answered:\n{tail}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return bytes(response.read())
            except OSError as exc:  # URLError and HTTPError (non-2xx) included
                last_error = repr(exc)
                time.sleep(0.2)
        tail = self.log_tail()
        raise AssertionError(f"{url} not answering after {timeout_s}s ({last_error}):\n{tail}")

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
