"""Importers of real public datasets into our input events (JSON Lines with a `topic`).

`run_import` runs one importer, validates every event with the service's own decoder,
sorts by event time (ties keep source order), writes the file and returns the counts.
Nothing is dropped silently: rejected rows and events are counted by reason.

>>> sorted(IMPORTERS)
['olist', 'online-retail', 'open-bandit', 'taobao', 'yoochoose']
>>> import tempfile, pathlib
>>> src = pathlib.Path(tempfile.mkdtemp()) / "ub.csv"
>>> _ = src.write_text("1,10,5,pv,1511658000\\n1,10,5,buy,1511658060\\n2,11,5,oops,1511658000\\n")
>>> stats = run_import("taobao", [str(src)], str(src.with_suffix(".jsonl")))
>>> stats.rows_read, stats.events_by_topic, stats.bad_rows
(3, {'clickstream': 1, 'orders': 1}, {'unknown_behavior': 1})
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

from backtest.argtypes import positive_int
from backtest.importers.common import Event, Importer, ImportFailed, Tally
from backtest.importers.olist import import_olist
from backtest.importers.online_retail import import_online_retail
from backtest.importers.open_bandit import import_open_bandit
from backtest.importers.taobao import import_taobao
from backtest.importers.yoochoose import import_yoochoose
from backtest.inputs import NothingValid, check_output_file
from backtest.jsonl import write_events
from backtest.progress import Progress, counts_text, progress_enabled
from online_models.decode import DecodeError, decode_dict

__all__ = ["IMPORTERS", "ImportFailed", "ImportStats", "add_import_parser", "run_import"]

IMPORTERS: dict[str, Importer] = {
    "taobao": import_taobao,
    "yoochoose": import_yoochoose,
    "open-bandit": import_open_bandit,
    "olist": import_olist,
    "online-retail": import_online_retail,
}

# The field that identifies an event on each topic; it must be unique in one output.
ID_FIELD = {"clickstream": "event_id", "orders": "order_id", "ad-impressions": "impression_id"}


@dataclass
class ImportStats:
    """What one import did. Dicts are sorted by key so summaries are reproducible."""

    format: str
    output: str
    rows_read: int = 0
    events_by_topic: dict[str, int] = field(default_factory=dict)
    bad_rows: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return sum(self.events_by_topic.values())

    def summary(self) -> str:
        """Human-readable report, the same text for the same input."""
        lines = [
            f"import {self.format}: {self.rows_read:,} rows read -> {self.events:,} events"
            f" -> {self.output}"
        ]
        lines += [f"  {topic:<16}{n:>12,}" for topic, n in self.events_by_topic.items()]
        total_bad = sum(self.bad_rows.values())
        lines.append(f"bad rows: {total_bad:,}" if total_bad else "bad rows: none")
        lines += [f"  {reason:<40}{n:>10,}" for reason, n in self.bad_rows.items()]
        if self.notes:
            lines.append("notes (rows kept, with a documented decision):")
            lines += [f"  {note:<40}{n:>10,}" for note, n in self.notes.items()]
        return "\n".join(lines)


def _check(events: list[Event], tally: Tally) -> list[Event]:
    """Events that pass the decoder and have unique ids; the rest counted by reason."""
    kept: list[Event] = []
    seen: set[tuple[str, str]] = set()
    for event in events:
        topic = event["topic"]
        # The decoder ignores unknown fields, so `topic` may stay in the object.
        try:
            decode_dict(topic, event)
        except DecodeError as exc:
            tally.bad[f"invalid_event:{exc.reason}"] += 1
            continue
        key = (topic, event[ID_FIELD[topic]])
        if key in seen:
            tally.bad["duplicate_id"] += 1
            continue
        seen.add(key)
        kept.append(event)
    return kept


def run_import(
    fmt: str, sources: list[str], output: str, limit: int | None = None, progress: bool = False
) -> ImportStats:
    """Import `sources` in format `fmt` into the JSON Lines file `output`.

    `limit` caps the rows read from the main table (summed over sources); `progress`
    draws a bar over the bytes read (backtest/progress.py).
    Raises ValueError for an unknown format and ImportFailed for unusable sources.
    """
    importer = IMPORTERS.get(fmt)
    if importer is None:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(sorted(IMPORTERS))}")
    tally = Tally()
    with Progress(f"import {fmt}", _files(sources), progress, noun="events") as bar:
        produced: list[Event] = []
        for event in importer(sources, tally, limit):
            produced.append(event)
            if not len(produced) & 0xFFF:
                bar.update(len(produced))
    events = _check(produced, tally)
    events.sort(key=itemgetter("ts"))  # stable: equal times keep source order
    if events:  # nothing valid: no empty file in place of (or beside) a useful one
        write_events(output, events)
    by_topic: dict[str, int] = {}
    for event in events:
        by_topic[event["topic"]] = by_topic.get(event["topic"], 0) + 1
    return ImportStats(
        format=fmt,
        output=output,
        rows_read=tally.rows_read,
        events_by_topic=dict(sorted(by_topic.items())),
        bad_rows=dict(sorted(tally.bad.items())),
        notes=dict(sorted(tally.notes.items())),
    )


def _files(sources: list[str]) -> list[Path]:
    """The files a source list names (a folder: the files in it), for the bar's total."""
    out: list[Path] = []
    for source in map(Path, sources):
        out += sorted(p for p in source.iterdir() if p.is_file()) if source.is_dir() else [source]
    return out


def add_import_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `import FORMAT SOURCE... -o OUTPUT [--limit N]` on an argparse subparsers.

    The sub-command sets `func` to a callable taking the parsed namespace and
    returning the exit status (0 ok, 1 nothing imported, 2 unusable source).

    >>> parser = argparse.ArgumentParser(prog="ecom-stream")
    >>> _ = add_import_parser(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["import", "taobao", "a.csv", "-o", "out.jsonl", "--limit", "5"])
    >>> args.format, args.sources, args.output, args.limit
    ('taobao', ['a.csv'], 'out.jsonl', 5)
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "import",
        help="convert a public dataset sample into input events (JSON Lines)",
        description="Convert a real public dataset into clickstream/orders/ad-impressions "
        "events, sorted by time, validated by the service decoder. See docs/importers.md.",
    )
    parser.add_argument("format", choices=sorted(IMPORTERS), help="source dataset format")
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="input file(s)/folder(s)")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="output .jsonl or .jsonl.gz (gzip when the name ends in .gz)",
    )
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        metavar="N",
        help="read at most N rows of the main table (default: all)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")  # fmt: skip
    parser.set_defaults(func=_command)
    return parser


def _command(args: argparse.Namespace) -> int:
    """Errors (InputError, ImportFailed) reach the CLI, which prints them as one line."""
    check_output_file(args.output)
    for source in args.sources:
        if not Path(source).exists():
            raise ImportFailed(f"{source}: no such file or folder")
    enabled = progress_enabled(sys.stderr, args.quiet)
    stats = run_import(args.format, list(args.sources), args.output, args.limit, enabled)
    if not stats.events:
        bad = f"; bad rows: {counts_text(stats.bad_rows)}" if stats.bad_rows else ""
        raise NothingValid(
            f"no valid events in {', '.join(args.sources)} ({stats.rows_read:,} rows read{bad})"
        )
    print(stats.summary())
    return 0
