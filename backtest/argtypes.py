"""Argument types shared by the command line's parsers (argparse `type=` callables).

>>> positive_int("3"), positive_float("0.5"), speed("max"), speed("10")
(3, 0.5, inf, 10.0)
"""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def speed(text: str) -> float:
    """A multiple of real time, or 'max' (infinite)."""
    return math.inf if text == "max" else positive_float(text)
