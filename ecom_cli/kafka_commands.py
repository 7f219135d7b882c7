"""The commands that talk to Kafka: worker, create-topics, demo, produce-demo.

Each reads and checks every setting first (`Settings.from_env`), then checks that the
cluster answers (`check_broker`), and only then connects for real: a mistake in the
environment is reported even while the broker is down.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from backtest.argtypes import positive_float
from streams.settings import Settings

FROM_ENVIRONMENT = (
    "Configuration comes from environment variables only (KAFKA_*, ECOM_*, "
    "ECOM_DOMAIN_<FIELD>; see README.md, Configuration); `ecom-stream settings` checks "
    "them and prints the effective settings, secrets masked."
)


def check_broker(settings: Settings) -> None:
    """Exit early, with one line, when the configured cluster does not answer."""
    from streams.app import kafka_client_kwargs
    from streams.lifecycle import require_broker

    asyncio.run(require_broker(settings.bootstrap_servers, kafka_client_kwargs(settings)))


def _worker(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    from faust import Worker

    from streams.app import create_app, kafka_client_kwargs
    from streams.group_offsets import ensure_committed
    from streams.lifecycle import bounded_shutdown_worker

    check_broker(settings)
    asyncio.run(
        ensure_committed(
            kafka_client_kwargs(settings),
            settings.app_id,
            settings.input_topics(),
            settings.partitions,
        )
    )
    app, _ = create_app(settings)
    worker_class = bounded_shutdown_worker(Worker, settings.shutdown_timeout_s)
    worker = worker_class(app, loglevel=settings.log_level)
    worker.execute_from_commandline()
    return 0


def _create_topics(args: argparse.Namespace) -> int:
    from streams.app import kafka_client_kwargs
    from streams.topics import create_topics

    settings = Settings.from_env()
    check_broker(settings)
    created = asyncio.run(create_topics(settings, kafka_client_kwargs(settings)))
    print(f"created {len(created)} topics: {', '.join(created) or '(all existed)'}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    Settings.from_env()  # checked before the embedded broker starts
    return run_demo(args.rate)


def _produce_demo(args: argparse.Namespace) -> int:
    from streams.app import kafka_client_kwargs
    from streams.demo import produce_demo

    settings = Settings.from_env()
    check_broker(settings)
    sent = asyncio.run(produce_demo(settings, kafka_client_kwargs(settings), args.rate, args.limit))
    print(f"sent {sent:,} events")
    return 0


def add_kafka_parsers(sub: Any) -> None:
    sub.add_parser(
        "worker",
        help="run a stream worker (Faust) against the configured Kafka cluster",
        description="Run one stream worker: consume the input topics, keep profiles and "
        "models, publish recommendations, bid adjustments and dead letters; serve "
        "/metrics, /healthz, /readyz, /models and /profiles/{user_id} on "
        "ECOM_WEB_HOST:ECOM_WEB_PORT. " + FROM_ENVIRONMENT,
    ).set_defaults(func=_worker)
    sub.add_parser(
        "create-topics",
        help="create every topic (inputs, outputs, changelog, snapshots)",
        description="Create every topic with ECOM_PARTITIONS partitions and "
        "ECOM_REPLICATION_FACTOR replicas; topics that exist are left alone. " + FROM_ENVIRONMENT,
    ).set_defaults(func=_create_topics)
    demo = sub.add_parser(
        "demo",
        help="embedded broker + topics + worker + demo stream, with a live summary",
        description="What `make run` runs: the embedded broker (unless "
        "KAFKA_BOOTSTRAP_SERVERS is set), the topics, one worker and a synthetic "
        "stream, with a summary every two seconds; Ctrl-C stops what it started. "
        + FROM_ENVIRONMENT,
    )
    demo.add_argument("--rate", type=positive_float, default=400.0, help="demo events per second")
    demo.set_defaults(func=_demo)
    pd = sub.add_parser(
        "produce-demo",
        help="write the synthetic demo stream to the input topics",
        description="Write the synthetic demo stream (users, campaigns, views, orders, "
        "impressions) to the input topics. " + FROM_ENVIRONMENT,
    )
    pd.add_argument("--rate", type=positive_float, default=400.0, help="events per second")
    pd.add_argument(
        "--limit", type=int, default=None, metavar="N", help="stop after N events (default: never)"
    )
    pd.set_defaults(func=_produce_demo)
