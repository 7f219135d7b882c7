"""Progress of long work (replay, import, produce): a tqdm bar on stderr.

The bar's percentage and ETA come from the bytes read of the inputs (of the files on
disk, so compressed bytes for `.gz`), which every reader of input files counts
through `open_counted`; the caller adds what it counts itself (events, event time).
It is drawn only on a terminal and never with `--quiet` (`progress_enabled`); the
command prints its own final line with the headline figures.

>>> import io
>>> progress_enabled(io.StringIO(), quiet=False)
False
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import time
from collections.abc import Iterable, Mapping
from typing import IO, Any

from tqdm import tqdm

PathLike = str | os.PathLike[str]
_active: list[Progress] = []  # the bars drawn now; counted reads advance the latest


def progress_enabled(stream: IO[str], quiet: bool) -> bool:
    return not quiet and hasattr(stream, "isatty") and stream.isatty()


class _CountedFile(io.FileIO):
    """A file whose reads advance the active progress bar by the bytes read."""

    def readinto(self, buffer: Any) -> int | None:
        n = super().readinto(buffer)
        if n and _active:
            _active[-1].advance(n)
        return n

    def readall(self) -> bytes:
        data = super().readall()
        if data and _active:
            _active[-1].advance(len(data))
        return data


def open_counted(path: PathLike) -> io.BufferedReader:
    """`open(path, "rb")` whose reads count towards the progress of the work."""
    return io.BufferedReader(_CountedFile(os.fspath(path), "r"), buffer_size=1 << 16)


class _OwningGzip(gzip.GzipFile):
    """A GzipFile that closes the file it reads from (GzipFile leaves a given one open)."""

    def close(self) -> None:
        source: Any = self.fileobj
        try:
            super().close()
        finally:
            if source is not None:
                source.close()


def open_input(path: PathLike) -> io.BufferedReader | gzip.GzipFile:
    """An input file as bytes, gunzipped when its name ends in `.gz`, reads counted."""
    raw = open_counted(path)
    if not os.fspath(path).endswith(".gz"):
        return raw
    return _OwningGzip(filename="", mode="rb", fileobj=raw)


class Progress:
    """A bar over the input bytes; `update` adds the caller's own counts to it."""

    def __init__(
        self,
        label: str,
        paths: Iterable[PathLike],
        enabled: bool,
        stream: IO[str] | None = None,
        noun: str = "events",
    ) -> None:
        total = sum(os.path.getsize(p) for p in paths if os.path.isfile(p))
        self.enabled, self.noun = enabled, noun
        self.start = time.perf_counter()
        self.bar = tqdm(
            total=total or None,
            desc=label,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=stream if stream is not None else sys.stderr,
            disable=not enabled,
            mininterval=0.5,
            dynamic_ncols=True,
        )
        if enabled:
            _active.append(self)

    def advance(self, nbytes: int) -> None:
        self.bar.update(nbytes)

    def update(self, count: int, ts: int | None = None) -> None:
        """`count` items done so far (events, rows); `ts`: the event time reached (ms)."""
        if not self.enabled:
            return
        rate = count / max(time.perf_counter() - self.start, 1e-9)
        text = f"{count:,} {self.noun}, {rate:,.0f}/s"
        if ts is not None:
            text += " at " + time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts / 1000))
        self.bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self in _active:
            _active.remove(self)
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def counts_text(counts: Mapping[str, int]) -> str:
    """Counts by reason as one short phrase, largest first: 'not_json 3, too_deep 1'.

    >>> counts_text({"too_deep": 1, "not_json": 3})
    'not_json 3, too_deep 1'
    """
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{reason} {n:,}" for reason, n in ranked)
