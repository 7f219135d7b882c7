"""Every private attribute streams/faust_fixes relies on, checked on the installed
libraries: it exists, has the shape (arguments, sync/async) the workaround was written
for, and is still reached the way the workaround assumes (Faust's own call site). An
upgrade that moves any of them fails here, loudly, rather than silently disabling a
fix; and the worker refuses to start on versions other than the pinned ones."""

from __future__ import annotations

import inspect
import signal
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust
import mode
import pytest
from faust.tables import recovery as recovery_module
from faust.tables.recovery import RebalanceAgain, Recovery
from faust.transport import consumer as consumer_module
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer
from faust.transport.producer import ProducerBuffer

from ecom_cli.main import main as cli_main
from streams.app import create_app
from streams.faust_fixes import versions
from streams.faust_fixes.group_lease import GroupLease, bind, coordinator_of
from streams.faust_fixes.recovery_gate import tables_ready
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def params(fn: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(fn).parameters)


def source(obj: Any) -> str:
    return inspect.getsource(obj)


@pytest.fixture
def app(tmp_path: Path) -> faust.App:
    env = {"ECOM_DATA_DIR": str(tmp_path / "data"), "ECOM_FETCH_END_OFFSETS": "1"}
    return create_app(Settings.from_env(env))[0]


# Versions --------------------------------------------------------------------------


def test_the_installed_libraries_are_the_ones_the_fixes_were_written_for() -> None:
    for dist, wanted in versions.WRITTEN_FOR.items():
        assert versions.installed(dist) == wanted, dist
    assert faust.__version__ == versions.WRITTEN_FOR["faust-streaming"]


def test_pyproject_pins_exactly_those_versions() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dist, wanted in versions.WRITTEN_FOR.items():
        assert f"{dist}=={wanted}" in deps, dist


def test_another_version_is_one_line_and_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = versions.installed
    monkeypatch.setattr(
        versions,
        "installed",
        lambda dist: "0.16.0" if dist == "faust-streaming" else real(dist),
    )
    monkeypatch.setenv("ECOM_DATA_DIR", str(tmp_path / "data"))
    # No broker at this address: the version is refused before anything connects.
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert cli_main(["worker"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "faust-streaming 0.15.3" in err and "found faust-streaming 0.16.0" in err


def test_install_is_called_once_per_app(app: faust.App) -> None:
    from streams.faust_fixes import install as faust_fixes
    from streams.faust_fixes.commit_guard import CommitGuard

    with pytest.raises(RuntimeError, match="twice"):
        faust_fixes.install(
            app,
            guard=CommitGuard(),
            on_commit=lambda: None,
            client_kwargs={},
            input_topics=[],
            partitions=1,
            fetch_end_offsets=False,
            shutdown_timeout_s=1.0,
            lease=GroupLease(10.0),
        )


# commit_guard: Consumer._commit ---------------------------------------------------


def test_commit_goes_through_the_consumers_private_commit(app: faust.App) -> None:
    assert isinstance(app.consumer, Consumer)
    assert inspect.iscoroutinefunction(Consumer._commit)
    assert params(Consumer._commit) == ["self", "offsets"]
    # Faust's only commit path calls it on the instance, where the guard sits.
    assert "await self._commit(committable_offsets)" in source(
        consumer_module.Consumer._commit_offsets
    )
    assert app.consumer._commit.__qualname__.startswith("install.")  # the guard


# group_lease: GroupCoordinator._do_heartbeat, _on_join_complete, _rejoin_needed_fut --


def test_the_coordinator_is_reached_and_renews_the_way_the_lease_assumes() -> None:
    from aiokafka.consumer import group_coordinator as gc
    from aiokafka.consumer.consumer import AIOKafkaConsumer

    coordinator_cls = gc.GroupCoordinator
    assert inspect.iscoroutinefunction(coordinator_cls._do_heartbeat)
    assert params(coordinator_cls._do_heartbeat) == ["self"]
    assert inspect.iscoroutinefunction(coordinator_cls._on_join_complete)
    assert params(coordinator_cls._on_join_complete) == [
        "self", "generation", "member_id", "protocol", "member_assignment_bytes",
    ]  # fmt: skip
    # Both are looked up on the instance at each call, where the lease's wrappers sit.
    assert "success = await self._do_heartbeat()" in source(coordinator_cls._heartbeat_routine)
    assert "await self._on_join_complete(" in source(coordinator_cls._do_rejoin_group)
    # A pending rejoin is this future, set by request_rejoin and made anew at each sync.
    assert "self._rejoin_needed_fut.set_result(None)" in source(coordinator_cls.request_rejoin)
    assert "self._coordinator._rejoin_needed_fut = create_future()" in source(
        gc.CoordinatorGroupRebalance._send_sync_group_request
    )
    # The path from the app: Faust's own (drivers/aiokafka.py, on_partitions_assigned).
    assert "self._consumer = self._create_consumer(" in source(AIOKafkaConsumerThread.on_start)
    assert "self._coordinator = GroupCoordinator(" in source(AIOKafkaConsumer.start)
    import faust.transport.drivers.aiokafka as driver

    assert "_ensure_consumer()._coordinator.generation" in source(driver)
    assert 'self._thread: "AIOKafkaConsumerThread" = thread' in source(driver)


def test_the_lease_follows_heartbeats_joins_and_rejoins() -> None:
    import asyncio

    t = [100.0]
    lease = GroupLease(10.0, clock=lambda: t[0])

    class FakeCoordinator:
        def __init__(self) -> None:
            self.ok = True
            self._rejoin_needed_fut: asyncio.Future[None] = asyncio.Future()

        async def _do_heartbeat(self) -> bool:
            t[0] += 0.5  # the request takes a while: the lease counts from its start
            return self.ok

        async def _on_join_complete(self, *args: object) -> None:
            t[0] += 0.2

    async def scenario() -> None:
        fake = FakeCoordinator()
        bind(fake, lease)
        bind(fake, lease)  # once per coordinator
        assert lease.problem() == "not_in_group"
        await fake._on_join_complete(1, "m", "range", b"")
        assert lease.held() and lease.renewed_at == 100.0
        t[0] = 108.0
        assert await fake._do_heartbeat() and lease.renewed_at == 108.0
        fake.ok = False
        t[0] = 118.6
        assert not await fake._do_heartbeat() and lease.renewed_at == 108.0
        assert lease.problem() == "group_session_lapsed:11s" and not lease.held()
        fake.ok = True
        await fake._do_heartbeat()
        assert lease.held()
        fake._rejoin_needed_fut.set_result(None)
        assert lease.problem() == "rebalancing" and not lease.held()

    asyncio.run(scenario())


def test_before_the_consumer_starts_there_is_no_coordinator(app: faust.App) -> None:
    assert coordinator_of(app) is None


# reliable_flush: ProducerBuffer._send_pending, flush, size --------------------------


def test_the_producer_buffer_still_sends_through_send_pending(app: faust.App) -> None:
    buffer = app.producer.buffer
    assert isinstance(buffer, ProducerBuffer)
    assert inspect.iscoroutinefunction(ProducerBuffer._send_pending)
    assert params(ProducerBuffer._send_pending) == ["self", "fut"]
    assert inspect.iscoroutinefunction(ProducerBuffer.flush)
    assert params(ProducerBuffer.flush) == ["self"]
    assert isinstance(ProducerBuffer.size, property)
    # The drain task binds the method when it starts (after install): hence an
    # instance attribute set before the producer starts.
    assert "send_pending = self._send_pending" in source(ProducerBuffer)  # _handle_pending
    assert buffer._send_pending.__qualname__.startswith("install.")


# recovery_restart: Recovery._seek_offsets, on_recovery_completed, signal -----------


def test_recovery_still_seeks_and_completes_through_the_guarded_methods(
    app: faust.App,
) -> None:
    assert inspect.iscoroutinefunction(Recovery._seek_offsets)
    assert params(Recovery._seek_offsets) == ["self", "consumer", "tps", "offsets", "title"]
    assert inspect.iscoroutinefunction(Recovery.on_recovery_completed)
    assert params(Recovery.on_recovery_completed) == ["self", "generation_id"]
    assert isinstance(Recovery.signal_recovery_start, property)
    assert issubclass(RebalanceAgain, Exception)
    text = source(recovery_module)
    # The race the guard closes: the active catch-up wait swallows every Exception
    # (RebalanceAgain included), then standbys are sought and recovery completed.
    assert "await self._wait(self.signal_recovery_end.wait())\n" in text
    swallowed = "except Exception as exc:\n" + " " * 24 + "finish_span(self._actives_span"
    assert swallowed in text
    assert "T(self._seek_offsets)(\n                            consumer, standby_tps" in text
    assert "await self._wait(T(self.on_recovery_completed)(generation_id))" in text
    assert "except RebalanceAgain" in text
    recovery = app.tables.recovery  # type: ignore[attr-defined]
    assert recovery._seek_offsets.__qualname__.startswith("install.")


# highwaters: AIOKafkaConsumerThread._highwaters ------------------------------------


def test_recovery_end_offsets_come_from_the_threads_private_highwaters(
    app: faust.App,
) -> None:
    thread = app.consumer._thread
    assert isinstance(thread, AIOKafkaConsumerThread)
    assert inspect.iscoroutinefunction(AIOKafkaConsumerThread._highwaters)
    assert params(AIOKafkaConsumerThread._highwaters) == ["self", "partitions"]
    assert "self.call_thread(self._highwaters, partitions)" in source(
        AIOKafkaConsumerThread.highwaters
    )
    assert "consumer.highwaters(" in source(Recovery._build_highwaters)
    # Patched on this app's thread only, never on the class for the whole process.
    assert thread._highwaters.__qualname__.startswith("install.")
    assert AIOKafkaConsumerThread._highwaters.__qualname__.startswith("AIOKafkaConsumerThread")


# bounded_shutdown: mode.Worker._schedule_shutdown, app.conf.Worker -----------------


def test_signals_still_go_through_schedule_shutdown(app: faust.App) -> None:
    assert issubclass(faust.Worker, mode.Worker)
    assert not inspect.iscoroutinefunction(mode.Worker._schedule_shutdown)
    assert params(mode.Worker._schedule_shutdown) == ["self", "signal"]
    assert source(mode.Worker).count("self._schedule_shutdown(signal.SIG") == 3
    assert inspect.iscoroutinefunction(faust.Worker.on_first_start)
    worker_class = app.conf.Worker
    assert issubclass(worker_class, faust.Worker)
    assert "_schedule_shutdown" in vars(worker_class) and "on_first_start" in vars(worker_class)
    assert "self.conf.Worker(self" in source(faust.App.Worker)
    assert signal.SIGTERM  # the signal the deadline is for


# recovery_gate: public attributes it reads ------------------------------------------


def test_the_recovery_gate_reads_what_faust_still_sets(app: faust.App) -> None:
    recovery = app.tables.recovery  # type: ignore[attr-defined]
    assert not recovery.completed.is_set() and not tables_ready(app)
    text = source(recovery_module)
    assert "self.completed.set()" in text and "self.in_recovery = False" in text
    assert "self.rebalancing = False" in source(faust.App.on_rebalance_end)
    assert "self.rebalancing = True" in source(faust.App.on_rebalance_start)
    recovery.completed.set()
    assert tables_ready(app)
    app.rebalancing = True
    assert not tables_ready(app)


# event_context: the context variable tables read the current event from ------------


def test_table_writes_find_their_partition_through_the_current_event_variable() -> None:
    from faust import streams as faust_streams
    from faust.tables import base as table_base

    from streams.faust_fixes.event_context import current_event

    assert "_current_event.get(None)" in source(faust_streams.current_event)
    assert "current_event()" in source(table_base.Collection.partition_for_key)
    assert "event.message.partition" in source(table_base.Collection.partition_for_key)

    class Event:  # the one attribute tables read: message.partition
        message = None

    event = Event()
    assert faust_streams.current_event() is None
    with current_event(event):
        assert faust_streams.current_event() is event
    assert faust_streams.current_event() is None
