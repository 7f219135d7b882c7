"""Declared type and accepted range of each configuration field, next to its definition.

One mechanism for the domain (`EngineConfig`) and the worker (`streams.settings`): a
field is declared with one of the helpers below, which store its `Bounds` in the
dataclass field's metadata; `problems()` checks an instance against them and
`parse()` reads a field from text (an environment variable). Messages name what was
given and what is accepted, so a user can fix every mistake from one run.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Knobs:
...     size: int = at_least(4, 1)
...     share: float = within(0.5, 0.0, 1.0, low_open=True)
>>> problems(Knobs(size=0, share=0.0))
['size=0: must be an integer >= 1', 'share=0.0: must be a number in (0, 1]']
>>> parse(Knobs, "size", "abc")
Traceback (most recent call last):
...
ValueError: must be an integer >= 1
>>> parse(Knobs, "share", "0.25")
0.25
"""

from __future__ import annotations

import math
from dataclasses import Field, dataclass, field, fields
from typing import Any, TypeVar

T = TypeVar("T")
KINDS: dict[str, type] = {"int": int, "float": float, "str": str}


class ConfigError(ValueError):
    """Every problem found in one configuration; str() is one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Bounds:
    """What a field accepts: numbers between `low` and `high` (each bound open or
    closed, None = unbounded), text among `choices`, or non-empty text."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    nonempty: bool = False

    def describe(self, kind: type) -> str:
        """The accepted values in words, e.g. 'an integer >= 1' or 'one of a, b'."""
        if self.choices:
            return "one of " + ", ".join(c or repr(c) for c in self.choices)
        if kind is str:
            return "non-empty text" if self.nonempty else "any text"
        noun = "an integer" if kind is int else "a number"
        lo, hi = _fmt(self.low), _fmt(self.high)
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            if kind is int and not (self.low_open or self.high_open):
                return f"{noun} from {lo} to {hi}"
            return f"{noun} in {left}{lo}, {hi}{right}"
        if self.low is not None:
            return f"{noun} {'>' if self.low_open else '>='} {lo}"
        if self.high is not None:
            return f"{noun} {'<' if self.high_open else '<='} {hi}"
        return noun

    def accepts(self, value: Any) -> bool:
        if isinstance(value, str):
            return value in self.choices if self.choices else bool(value) or not self.nonempty
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


def _fmt(x: float | None) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _declare(default: Any, bounds: Bounds, **kw: Any) -> Any:
    return field(default=default, metadata={"bounds": bounds}, **kw)


def at_least(default: T, low: float) -> T:
    """A number >= `low`."""
    return _declare(default, Bounds(low=low))


def above(default: T, low: float) -> T:
    """A number > `low`."""
    return _declare(default, Bounds(low=low, low_open=True))


def within(
    default: T, low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> T:
    """A number from `low` to `high`, each included unless said open."""
    bounds = Bounds(low=low, high=high, low_open=low_open, high_open=high_open)
    return _declare(default, bounds)


def flag(default: int) -> int:
    """0 (off) or 1 (on)."""
    return within(default, 0, 1)


def one_of(default: str, *choices: str) -> str:
    """Text among `choices` (the default first among them or not)."""
    return _declare(default, Bounds(choices=choices))


def text(default: str, *, nonempty: bool = True, secret: bool = False) -> str:
    """Text; non-empty unless told; a secret is kept out of repr()."""
    bounds = Bounds(nonempty=nonempty)
    return _declare(default, bounds, repr=not secret)


def kind_of(f: Field[Any]) -> type:
    """The field's declared scalar type (annotations are strings under PEP 563)."""
    declared: Any = f.type
    if isinstance(declared, str):
        return KINDS[declared]
    return declared


def bounds_of(f: Field[Any]) -> Bounds:
    bounds = f.metadata.get("bounds")
    if not isinstance(bounds, Bounds):
        raise TypeError(f"field {f.name!r} declares no range (use online_models.bounds)")
    return bounds


def describe(cls: type, name: str) -> str:
    """The accepted values of field `name` of dataclass `cls`, in words."""
    f = {f.name: f for f in fields(cls)}[name]
    return bounds_of(f).describe(kind_of(f))


def parse(cls: type, name: str, raw: str) -> Any:
    """Field `name` of `cls` read from text; ValueError('must be ...') when it does not fit."""
    f = {f.name: f for f in fields(cls)}[name]
    kind, bounds = kind_of(f), bounds_of(f)
    why = f"must be {bounds.describe(kind)}"
    try:
        value: Any = raw if kind is str else _number(kind, raw.strip())
    except ValueError:
        raise ValueError(why) from None
    if not bounds.accepts(value):
        raise ValueError(why)
    return value


def _number(kind: type, raw: str) -> int | float:
    value = float(raw)
    if kind is float:
        return value
    if not value.is_integer():  # "2e5" is an integer, "1.5" is not
        raise ValueError(raw)
    return int(value)


def problems(obj: Any, names: dict[str, str] | None = None) -> list[str]:
    """One message per field of dataclass instance `obj` outside its declared range,
    naming the field (or its entry in `names`, e.g. an environment variable)."""
    out: list[str] = []
    for f in fields(obj):
        if "bounds" not in f.metadata:
            continue
        value, kind, bounds = getattr(obj, f.name), kind_of(f), bounds_of(f)
        fits = isinstance(value, str) if kind is str else _is_number(value, kind)
        if not (fits and bounds.accepts(value)):
            label = (names or {}).get(f.name, f.name)
            shown = "***" if not f.repr else repr(value)
            out.append(f"{label}={shown}: must be {bounds.describe(kind)}")
    return out


def _is_number(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind is int else isinstance(value, int | float)
