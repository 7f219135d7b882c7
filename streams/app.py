"""The Faust application: topics, the user table, the agent, web views and timers.
Everything here is wiring; decisions live in `online_models` (one record:
`online_models.pipeline`)."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from pathlib import Path
from typing import Any

import faust
import msgspec
from faust.types import TP

from online_models import __version__ as domain_version
from online_models.config import EngineConfig
from online_models.partitioning import partition_for
from online_models.pipeline import copy_of
from streams import __version__
from streams.campaign_feed import follow_campaigns
from streams.faust_fixes.event_context import current_event
from streams.faust_fixes.group_lease import GroupLease, coordinator_of
from streams.faust_fixes.in_order import RESEEK_S
from streams.faust_fixes.initial_offsets import committed_offsets
from streams.faust_fixes.install import install as install_faust_fixes
from streams.faust_fixes.recovery_gate import tables_ready
from streams.heap_trim import trim as trim_heap
from streams.metrics import Metrics
from streams.previous_member import leave_previous, remember
from streams.runtime import Runtime
from streams.runtime_factory import build_runtime
from streams.settings import Settings
from streams.state_store import StateStore
from streams.web_log import install_web_log_filter

log = logging.getLogger(__name__)
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4"  # aiohttp refuses a charset here


def kafka_client_kwargs(s: Settings) -> dict[str, Any]:
    """aiokafka connection arguments, including TLS/SASL, from the settings."""
    kw: dict[str, Any] = {"bootstrap_servers": s.bootstrap_servers.split(",")}
    if s.security_protocol != "PLAINTEXT":
        kw["security_protocol"] = s.security_protocol
    if "SSL" in s.security_protocol:
        kw["ssl_context"] = _ssl_context(s)
    if s.security_protocol.startswith("SASL"):
        kw.update(
            sasl_mechanism=s.sasl_mechanism,
            sasl_plain_username=s.sasl_username,
            sasl_plain_password=s.sasl_password,
        )
    return kw


def _ssl_context(s: Settings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=s.ssl_cafile or None)
    if s.ssl_certfile:
        ctx.load_cert_chain(s.ssl_certfile, s.ssl_keyfile or None, s.ssl_key_password or None)
    return ctx


def _credentials(s: Settings) -> Any:
    if s.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=s.sasl_username,
            password=s.sasl_password,
            mechanism=s.sasl_mechanism,
            ssl_context=_ssl_context(s) if s.security_protocol == "SASL_SSL" else None,
        )
    if s.security_protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(s))
    return None


def create_app(settings: Settings) -> tuple[faust.App, Runtime]:
    # Faust creates only the last level of its data dir; a fresh clone has no `.run/`.
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    client_kwargs = kafka_client_kwargs(settings)
    app = faust.App(
        settings.app_id,
        broker=";".join(f"kafka://{b}" for b in settings.bootstrap_servers.split(",")),
        broker_credentials=_credentials(settings),
        store=settings.table_store,
        datadir=settings.data_dir,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=False,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        broker_session_timeout=settings.session_timeout_s,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        consumer_group_instance_id=settings.group_instance_id or None,
        broker_commit_interval=settings.commit_interval_s,
        broker_max_poll_records=settings.max_poll_records,
        producer_max_request_size=4 * 1024 * 1024,
        consumer_auto_offset_reset="earliest",
        table_cleanup_interval=3600.0,
    )
    metrics = Metrics()
    metrics.worker.info({"version": __version__, "model_version": f"lr1-{domain_version}"})
    cfg = EngineConfig.for_run(settings.partitions, settings.domain)

    def raw_topic(name: str) -> Any:
        return app.topic(
            name, key_serializer="raw", value_serializer="raw", partitions=settings.partitions
        )

    lease = GroupLease(settings.session_timeout_s)

    def is_ready() -> bool:
        return tables_ready(app)

    def may_apply() -> bool:
        # Tables recovered, and the partitions still this worker's (group_lease.py).
        return tables_ready(app) and lease.held()

    def writer() -> bytes:
        return f"{os.getpid()}:{getattr(app, 'consumer_generation_id', -1)}".encode()

    inputs = app.topic(*settings.input_topics(), key_serializer="raw", value_serializer="raw")
    users = app.Table("users", key_type=str, value_type=bytes, partitions=settings.partitions)
    runtime = build_runtime(
        settings,
        cfg,
        metrics,
        client_kwargs,
        users=StateStore(
            users,
            settings.state_cache_users,
            on_unreadable=lambda user: metrics.unreadable_states.inc(),
        ),
        topics={
            "recommendations": raw_topic(settings.topic_recommendations),
            "bid-adjustments": raw_topic(settings.topic_bid_adjustments),
            "dead-letter": raw_topic(settings.topic_dead_letter),
            "snapshots": raw_topic(settings.topic_snapshots),
            "erasure-confirmations": raw_topic(settings.topic_erasure_confirmations),
            **{name: raw_topic(name) for name in settings.input_topics()},
        },
        tables_ready=may_apply,
        event_context=current_event,
        consumer=AppConsumer(app),
        writer=writer,
    )

    @app.agent(inputs, name="process")
    async def process(stream: Any) -> None:
        # Poison records become dead letters in the handler; what still ends this loop
        # (a send that fails, a bug in the shell) is reported to the liveness probe.
        runtime.health.agent_started()
        try:
            async for event in stream.events():
                msg = event.message
                await runtime.handle(
                    msg.topic, msg.partition, msg.offset, msg.key, msg.value, event,
                    copy_of(msg.headers) if msg.headers else None,
                )  # fmt: skip
        except asyncio.CancelledError:
            runtime.health.agent_stopped()
            raise
        except BaseException as exc:
            log.exception("processing agent crashed")
            metrics.agent_crashes.inc()
            runtime.health.agent_stopped(exc)
            raise
        runtime.health.agent_stopped()

    @app.task
    async def campaigns() -> None:
        await follow_campaigns(client_kwargs, settings, runtime)

    def update_gauges() -> None:
        runtime.reports.update_gauges()
        recovering = not is_ready()
        metrics.live.set(0 if runtime.health.liveness() else 1)
        metrics.ready.set(0 if runtime.health.readiness(recovering, lease.problem()) else 1)
        metrics.group_generation.set(getattr(app, "consumer_generation_id", -1))

    @app.timer(interval=5.0)
    async def gauges() -> None:
        update_gauges()

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        update_gauges()
        return web.bytes(metrics.exposition(), content_type=PROMETHEUS_CONTENT_TYPE)

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        report = runtime.health.report(recovering=not is_ready(), group=lease.problem())
        return web.json(report, status=200 if report["live"] else 503)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        report = runtime.health.report(recovering=not is_ready(), group=lease.problem())
        return web.json(report, status=200 if report["ready"] else 503)

    @app.page("/profiles/{user_id}")
    async def profile_view(web: Any, request: Any, user_id: str) -> Any:
        partition = partition_for(user_id.encode(), settings.partitions)
        if partition not in runtime.owned():
            # A standby copy may be behind: never serve it as the current profile.
            return web.json(
                {"error": f"partition {partition} is not owned by this worker",
                 "partition": partition},
                status=404,
            )  # fmt: skip
        if not is_ready():
            return web.json({"error": "tables are recovering", "partition": partition}, status=503)
        state = runtime.users.peek(user_id)
        if state is None:
            return web.json(
                {
                    "error": f"no profile (partition {partition}, owned here)",
                    "partition": partition,
                },
                status=404,
            )
        return web.json(
            {
                "partition": partition,
                # the segment as it may be shown: k-anonymous (issue 21)
                "profile": msgspec.to_builtins(state.profile)
                | {"segment": runtime.knowledge.public_segment(state.profile.segment)},
                "applied_offsets": state.applied,
            }
        )

    @app.page("/models")
    async def models_view(web: Any, request: Any) -> Any:
        return web.json(runtime.reports.model_report())

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        runtime.users.forget_cache()
        mine = {tp.partition for tp in revoked if tp.topic in settings.input_topics()}
        for p in mine & set(runtime.engines):
            await runtime.snapshots.write(p, runtime.engines[p])
        runtime.drop(mine)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        metrics.rebalances.inc()
        runtime.users.forget_cache()
        inputs = [
            (tp.topic, tp.partition) for tp in assigned if tp.topic in settings.input_topics()
        ]
        for tp, committed in (
            await committed_offsets(client_kwargs, settings.app_id, inputs)
        ).items():
            runtime.guard.start(tp, committed)
        mine = {p for _, p in inputs}
        coordinator = coordinator_of(app)
        if coordinator is not None and not settings.group_instance_id:
            remember(settings.data_dir, coordinator.member_id)  # streams/previous_member.py
        await runtime.restore_many(sorted(mine - set(runtime.engines)))

    @app.task
    async def lag() -> None:
        # A loop, not a timer: the first reading (and so readiness) comes at once.
        while True:
            await runtime.lag.refresh()
            await asyncio.sleep(settings.lag_refresh_s)

    if settings.input_idle_ms > 0:

        @app.timer(interval=settings.input_idle_ms / 2000)
        async def merge_idle() -> None:
            # A partition held by a topic that fell silent goes on without it.
            await runtime.release_idle()

    @app.timer(interval=RESEEK_S)
    async def holes() -> None:
        await runtime.order.reseek()

    @app.timer(interval=settings.snapshot_every_s)
    async def snapshots() -> None:
        await runtime.snapshots.idle(runtime.engines)

    if settings.heap_trim_s > 0:

        @app.timer(interval=settings.heap_trim_s)
        async def heap_trim() -> None:
            trim_heap()

    if settings.debug_memory_s > 0:
        from streams.memdebug import install_memory_debug

        install_memory_debug(app, settings.debug_memory_s)
    install_faust_fixes(
        app,
        guard=runtime.guard,
        on_commit=metrics.commits.inc,
        client_kwargs=client_kwargs,
        input_topics=settings.input_topics(),
        partitions=settings.partitions,
        fetch_end_offsets=bool(settings.fetch_end_offsets),
        shutdown_timeout_s=settings.shutdown_timeout_s,
        lease=lease,
        on_start=None
        if settings.group_instance_id
        else lambda: leave_previous(client_kwargs, settings.app_id, settings.data_dir),
    )
    install_web_log_filter()  # a client sending garbage must not flood the log
    log.info("settings: %s", settings.redacted())
    return app, runtime


class AppConsumer:
    """The app's Faust consumer (made when the app starts, so read at each call)
    through its public methods (`streams.ports.InputConsumer`)."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    def assignment(self) -> set[Any]:
        return set(self.app.consumer.assignment())

    async def seek(self, tp: Any, offset: int) -> None:
        await self.app.consumer.seek(tp, offset)

    def highwater(self, topic: str, partition: int) -> int | None:
        """The log end its latest fetch response reported; None while not known."""
        try:
            end = self.app.consumer.highwater(TP(topic, partition))
        except Exception:  # not assigned (any more) or not fetched yet: not known
            return None
        return end if isinstance(end, int) and end >= 0 else None
