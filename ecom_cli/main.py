"""`ecom-stream`: the command line of the service (also `python -m ecom_cli`).

Every user error (configuration, unreachable broker, unusable input or output path)
ends the command with one line per problem on stderr and a non-zero exit code, never
a traceback: 2 for what must be fixed before anything runs, 1 for work that found
nothing valid to process.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from backtest.cli import add_backtest_parsers
from backtest.importers import add_import_parser
from backtest.inputs import InputError
from ecom_cli.erase_command import add_erase_parser
from ecom_cli.help import apply_help_format
from ecom_cli.kafka_commands import add_kafka_parsers
from ecom_cli.produce import add_produce_parser
from ecom_cli.schemas_command import add_schemas_parser
from ecom_cli.settings_command import add_settings_parser
from online_models.bounds import ConfigError
from streams.faust_fixes.versions import UnsupportedVersion
from streams.lifecycle import EXIT_UNREACHABLE, BrokerUnreachable

DESCRIPTION = """\
Real-time marketing event streams for e-commerce: Faust workers on Kafka, and the
offline tools (dataset importers, replay backtests) that run the same engine.

The worker and every command that talks to Kafka are configured by environment
variables only (KAFKA_*, ECOM_*, ECOM_DOMAIN_<FIELD>); `ecom-stream settings` checks
them and prints the effective settings (secrets masked). `ecom-stream COMMAND --help`
describes each command and every option with its default."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecom-stream",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    add_kafka_parsers(sub)
    add_settings_parser(sub)
    add_produce_parser(sub)
    add_import_parser(sub)
    add_backtest_parsers(sub)
    add_schemas_parser(sub)
    add_erase_parser(sub)
    apply_help_format(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    prefix = f"ecom-stream {args.command}"
    try:
        return int(args.func(args))
    except ConfigError as exc:  # settings and ECOM_DOMAIN_* alike: one line each
        for problem in exc.problems:
            print(f"{prefix}: configuration error: {problem}", file=sys.stderr)
        return 2
    except UnsupportedVersion as exc:  # streams/faust_fixes/versions.py
        print(f"{prefix}: {exc}", file=sys.stderr)
        return 2
    except BrokerUnreachable as exc:
        print(f"{prefix}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except InputError as exc:
        print(f"{prefix}: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `ecom-stream settings | head`: the reader left, not an error
        sys.stderr.close()
        return 0
    except OSError as exc:  # e.g. a full disk or a permission denied while writing
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{prefix}: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
