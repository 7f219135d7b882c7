"""User errors about input and output paths, found before any work starts.

Every command that reads files or writes results checks its paths here first, so a
wrong path is one line naming it (`InputError`), never a traceback half-way through.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> check_input_files([folder])
Traceback (most recent call last):
...
backtest.inputs.InputError: ... is a directory, not a file
>>> (folder / "a.jsonl").write_text("{}")
2
>>> check_output_folder(folder / "a.jsonl")
Traceback (most recent call last):
...
backtest.inputs.InputError: ... exists and is not a folder
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable
from pathlib import Path

PathLike = str | os.PathLike[str]
# What a corrupt or truncated gzip stream raises while it is read.
GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


class InputError(Exception):
    """An input or output path the command cannot use; str() is the one line to print."""

    exit_code = 2


class NothingValid(InputError):
    """The inputs were read but held nothing valid to process."""

    exit_code = 1


def check_input_files(paths: Iterable[PathLike]) -> None:
    """Each path is an existing, readable regular file (a `.gz` one starts as gzip)."""
    for path in paths:
        p = Path(path)
        if p.is_dir():
            raise InputError(f"{p}: is a directory, not a file")
        if not p.exists():
            raise InputError(f"{p}: no such file")
        if not os.access(p, os.R_OK):
            raise InputError(f"{p}: not readable (permissions)")
        if p.name.endswith(".gz"):
            with open(p, "rb") as handle:
                if handle.read(2) != b"\x1f\x8b":
                    raise InputError(f"{p}: named .gz but not gzip-compressed")


def check_output_folder(path: PathLike) -> None:
    """`path` is a folder or can be created as one."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{p}: exists and is not a folder")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{parent}: exists and is not a folder (parent of {p})")
            break


def check_output_file(path: PathLike) -> None:
    """`path` can be written as a file: not a folder, its parent not a file."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: is a directory; give a file name")
    check_output_folder(p.parent)


def gzip_failure(path: PathLike, exc: BaseException) -> InputError:
    """The one-line error of a gzip stream that broke while being read."""
    why = str(exc).strip() or type(exc).__name__
    return InputError(f"{path}: truncated or corrupt gzip data ({why})")
