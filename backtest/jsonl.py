"""JSON Lines event files: one JSON object per line, gzip when the name ends in `.gz`.

Writes are reproducible: the gzip header carries no file name and no timestamp, so
the same events always give the same bytes.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.jsonl.gz"
>>> write_events(path, [{"topic": "clickstream", "ts": 1}, {"topic": "orders", "ts": 2}])
2
>>> [e["topic"] for e in read_events(path)]
['clickstream', 'orders']
>>> next(iter_lines(path))
b'{"topic":"clickstream","ts":1}'
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from backtest.inputs import GZIP_ERRORS, gzip_failure
from backtest.progress import open_input

PathLike = str | os.PathLike[str]
_CHUNK = 4096  # lines per write call; fewer, larger writes keep gzip fast


def iter_lines(path: PathLike) -> Iterator[bytes]:
    """The raw JSON of each non-blank line, without its line ending (for fast replay).

    Reads count towards the progress bar (backtest/progress.py); a `.gz` file that is
    not gzip or ends early is an InputError naming the file, not a traceback."""
    with open_input(path) as handle:
        lines = iter(handle)
        while True:
            try:
                line = next(lines)
            except StopIteration:
                return
            except GZIP_ERRORS as exc:
                raise gzip_failure(path, exc) from None
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield line


def read_events(paths: PathLike | Iterable[PathLike]) -> Iterator[dict[str, Any]]:
    """Parsed events of one file, or of several files one after another."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    for path in paths:
        for line in iter_lines(path):
            yield orjson.loads(line)


def write_events(path: PathLike, events: Iterable[dict[str, Any]], compresslevel: int = 6) -> int:
    """Write `events` as JSON Lines, atomically (temp file, then rename); return the count.

    Parent folders are created. Keys keep their insertion order.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    try:
        count = _write(tmp, events, compresslevel if target.name.endswith(".gz") else None)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never leave a half-written file behind
        raise
    os.replace(tmp, target)
    return count


def _write(path: Path, events: Iterable[dict[str, Any]], compresslevel: int | None) -> int:
    count = 0
    with open(path, "wb") as raw:
        sink: gzip.GzipFile | io.BufferedWriter = raw
        if compresslevel is not None:
            # filename="" and mtime=0: the gzip header must not vary between runs.
            sink = gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                 compresslevel=compresslevel, mtime=0)  # fmt: skip
        try:
            chunk: list[bytes] = []
            dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
            for event in events:
                chunk.append(dumps(event, option=newline))
                if len(chunk) >= _CHUNK:
                    sink.write(b"".join(chunk))
                    count += len(chunk)
                    chunk.clear()
            sink.write(b"".join(chunk))
            count += len(chunk)
        finally:
            if sink is not raw:
                sink.close()
    return count
