"""`ecom-stream` command line: worker, create-topics, demo, produce-demo, import,
replay and produce. Configuration comes from the environment (see README)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from streams.settings import Settings, SettingsError


def require_broker(settings: Settings) -> None:
    """Exit early, with one line, when the configured cluster does not answer."""
    from streams.app import kafka_client_kwargs
    from streams.lifecycle import require_broker as check

    asyncio.run(check(settings.bootstrap_servers, kafka_client_kwargs(settings)))


def _worker(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    from streams.app import create_app
    from streams.faust_fixes.versions import require_supported

    # Unsupported Faust versions are refused before anything connects (install, in
    # create_app, checks again for every other caller).
    require_supported()
    require_broker(settings)
    app, _ = create_app(settings)
    # The worker class set by streams.faust_fixes.install (shutdown deadline, initial
    # offsets committed before the first join).
    app.Worker(loglevel=settings.log_level).execute_from_commandline()
    return 0


def _create_topics(args: argparse.Namespace) -> int:
    from streams.app import kafka_client_kwargs
    from streams.topics import create_topics

    settings = Settings.from_env()
    require_broker(settings)
    created = asyncio.run(create_topics(settings, kafka_client_kwargs(settings)))
    print(f"created {len(created)} topics: {', '.join(created) or '(all existed)'}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    return run_demo(args.rate)


def _produce_demo(args: argparse.Namespace) -> int:
    from streams.app import kafka_client_kwargs
    from streams.demo import produce_demo

    settings = Settings.from_env()
    require_broker(settings)
    sent = asyncio.run(produce_demo(settings, kafka_client_kwargs(settings), args.rate, args.limit))
    print(f"sent {sent} events")
    return 0


def _schemas(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from online_models.schemas import schemas

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for topic, schema in schemas().items():
        (out / f"{topic}.schema.json").write_text(
            json.dumps(schema, indent=2, sort_keys=True) + "\n"
        )
    print(f"wrote {len(schemas())} schemas to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecom-stream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run a stream worker (Faust)").set_defaults(func=_worker)
    sub.add_parser("create-topics", help="create all topics").set_defaults(func=_create_topics)
    demo = sub.add_parser("demo", help="broker + worker + demo stream + live summary")
    demo.add_argument("--rate", type=float, default=400.0, help="events per second")
    demo.set_defaults(func=_demo)
    pd = sub.add_parser("produce-demo", help="write a synthetic stream to the input topics")
    pd.add_argument("--rate", type=float, default=400.0)
    pd.add_argument("--limit", type=int, default=None)
    pd.set_defaults(func=_produce_demo)
    sc = sub.add_parser("schemas", help="write the JSON Schemas of every topic")
    sc.add_argument("--out", default="schemas")
    sc.set_defaults(func=_schemas)
    from backtest.importers import add_import_parser

    add_import_parser(sub)
    try:
        from backtest.cli import add_backtest_parsers
    except ImportError:  # the backtest commands are optional in slim images
        pass
    else:
        add_backtest_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from streams.faust_fixes.versions import UnsupportedVersion
    from streams.lifecycle import EXIT_UNREACHABLE, BrokerUnreachable

    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(f"ecom-stream: configuration error: {exc}", file=sys.stderr)
        return 2
    except BrokerUnreachable as exc:
        print(f"ecom-stream: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except UnsupportedVersion as exc:
        print(f"ecom-stream: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
