"""Shared pieces of the dataset importers: tallies, stable hashing, invented prices, time.

Everything here is deterministic: the same input gives the same bytes on any machine,
so hashing uses BLAKE2b (Python's built-in `hash` is salted per process) and no
function reads the clock.

>>> stable_unit("item", "42") == stable_unit("item", "42")
True
>>> 0.0 < stable_unit("item", "42") < 1.0
True
>>> lognormal_price("taobao-price", "1715") == lognormal_price("taobao-price", "1715")
True
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from hashlib import blake2b
from pathlib import Path
from statistics import NormalDist
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backtest.inputs import GZIP_ERRORS, InputError, gzip_failure
from backtest.progress import open_input
from online_models.timeparse import MAX_TS_MS, MIN_TS_MS

# Bump to re-draw every invented number (prices, bids, costs) at once; it is part of
# every hashed key, so old and new outputs never mix silently.
SEED = "ecom-stream-import-v1"

Event = dict[str, Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_NORMAL = NormalDist()


class ImportFailed(InputError):
    """The source cannot be imported at all (missing file, wrong columns, not text)."""


@dataclass
class Tally:
    """Counts kept while importing: rows read, bad rows by reason, notable decisions."""

    rows_read: int = 0
    bad: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)

    def budget(self, limit: int | None) -> int | None:
        """Rows still allowed under `--limit` (None = unlimited).

        >>> t = Tally(rows_read=7)
        >>> t.budget(10), t.budget(5), t.budget(None)
        (3, 0, None)
        """
        return None if limit is None else max(0, limit - self.rows_read)


# An importer reads sources, counts into the tally and yields events (with `topic`).
Importer = Callable[[Sequence[str], Tally, int | None], Iterable[Event]]


def stable_unit(*parts: str) -> float:
    """A uniform number in (0, 1) fixed by `parts` and SEED.

    >>> round(stable_unit("a"), 6) == round(stable_unit("a"), 6) != round(stable_unit("b"), 6)
    True
    """
    digest = blake2b("\x1f".join((SEED, *parts)).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2.0**64


def stable_normal(*parts: str) -> float:
    """A standard-normal draw fixed by `parts` (inverse CDF of `stable_unit`)."""
    return _NORMAL.inv_cdf(stable_unit(*parts))


def stable_id(prefix: str, *parts: str, size: int = 8) -> str:
    """A short id that hashes `parts`, e.g. pseudo-users from hashed features.

    >>> stable_id("u-", "x", "y")
    'u-2906c736f329168c'
    """
    return prefix + blake2b("\x1f".join(parts).encode(), digest_size=size).hexdigest()


def lognormal_price(
    kind: str,
    key: str,
    median: float = 49.0,
    sigma: float = 0.9,
    low: float = 0.5,
    high: float = 50_000.0,
    digits: int = 2,
) -> float:
    """An invented but stable price: lognormal around `median`, clipped, rounded.

    >>> p = lognormal_price("demo", "item-1")
    >>> 0.5 <= p <= 50_000 and p == round(p, 2)
    True
    """
    price = median * math.exp(sigma * stable_normal(kind, key))
    return round(min(high, max(low, price)), digits)


def ts_ok(ms: int) -> bool:
    """Whether `ms` is inside the decoder's plausible event-time range."""
    return MIN_TS_MS <= ms <= MAX_TS_MS


def zone(name: str) -> tzinfo:
    """The IANA zone `name`; fails loudly rather than guessing an offset."""
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError as exc:
        raise ImportFailed(f"time zone {name!r} unavailable; install `tzdata`") from exc


class LocalTime:
    """Parse `YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]` to epoch ms, naive times in `tz`.

    Results are cached because order lines repeat their order's timestamp.

    >>> LocalTime(UTC)("2017-11-26 01:00:00")
    1511658000000
    >>> LocalTime(UTC)("2019-11-24 00:00:34.762830+00:00")
    1574553634762
    """

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._cache: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        ms = self._cache.get(text)
        if ms is None:
            dt = datetime.fromisoformat(text)  # ValueError on garbage, caller counts it
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=self.tz)
            # Integer arithmetic: floats would round microseconds differently per value.
            ms = (dt - _EPOCH) // _MS
            self._cache[text] = ms
        return ms


class _SourceText(io.TextIOWrapper):
    """UTF-8 text of a source whose undecodable bytes or broken gzip stream are an
    ImportFailed naming the file (one line for the user), not a traceback."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(open_input(path), encoding="utf-8-sig", newline="")
        self.path = str(path)

    def __next__(self) -> str:  # type: ignore[override]
        with self._readable():
            return super().__next__()

    def read(self, size: int | None = -1) -> str:
        with self._readable():
            return super().read(size)

    @contextlib.contextmanager
    def _readable(self) -> Iterator[None]:
        try:
            yield
        except UnicodeDecodeError as exc:
            raise ImportFailed(f"{self.path}: not UTF-8 text ({exc.reason})") from None
        except GZIP_ERRORS as exc:
            raise gzip_failure(self.path, exc) from None


def open_text(path: str | Path) -> TextIO:
    """Open a CSV source as text, gunzipping `*.gz`; a BOM (Excel exports) is dropped.
    Reads count towards the progress bar (backtest/progress.py)."""
    if Path(path).is_dir():
        raise ImportFailed(f"{path}: is a directory, not a file")
    if not Path(path).exists():
        raise ImportFailed(f"{path}: no such file")
    return _SourceText(path)


def csv_rows(path: str | Path, delimiter: str = ",") -> Iterator[list[str]]:
    """All rows of a CSV file, header included."""
    with open_text(path) as handle:
        yield from csv.reader(handle, delimiter=delimiter)


def header_index(header: Sequence[str], wanted: Sequence[str], source: str) -> list[int]:
    """Column positions of `wanted`, or ImportFailed naming what is missing.

    >>> header_index(["a", "b", "c"], ["c", "a"], "demo.csv")
    [2, 0]
    """
    names = [h.strip() for h in header]
    missing = [w for w in wanted if w not in names]
    if missing:
        raise ImportFailed(f"{source}: missing column(s) {missing}; header is {names}")
    return [names.index(w) for w in wanted]


def parse_float(text: str) -> float | None:
    """A finite float, or None for empty/garbage/NaN/inf text.

    >>> parse_float("2.55"), parse_float(""), parse_float("nan"), parse_float("x")
    (2.55, None, None, None)
    """
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
