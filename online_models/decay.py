"""Exponential time decay that does not depend on the order events arrive in.

Decayed maps are kept as of a reference time: the latest event time seen. A newer
event first decays every map to its own time; an older one contributes its weight
already decayed to the reference. Either order gives the same values (up to float
rounding), which is what lets a replay reproduce live profiles.

>>> a, b = {}, {}
>>> ref, w = advance([a], ref=0, ts=0, half_life=1000); a["view"] = a.get("view", 0) + w
>>> ref, w = advance([a], ref=ref, ts=1000, half_life=1000); a["view"] = a.get("view", 0) + w
>>> ref2, w = advance([b], ref=0, ts=1000, half_life=1000); b["view"] = b.get("view", 0) + w
>>> ref2, w = advance([b], ref=ref2, ts=0, half_life=1000); b["view"] = b.get("view", 0) + w
>>> (a["view"], ref) == (b["view"], ref2) == (1.5, 1000)
True
"""

from __future__ import annotations

from collections.abc import Iterable


def factor(dt_ms: float, half_life_ms: float) -> float:
    """Weight left after `dt_ms` with the given half-life."""
    return float(2.0 ** (-dt_ms / half_life_ms))


def advance(
    maps: Iterable[dict[str, float]], ref: int, ts: int, half_life: float
) -> tuple[int, float]:
    """Bring `maps` (kept as of `ref`) up to `ts` if it is newer.

    Returns the new reference time and the weight an observation at `ts` carries.
    """
    if ts > ref:
        f = factor(ts - ref, half_life)
        for m in maps:
            for k in m:
                m[k] *= f
        return ts, 1.0
    return ref, factor(ref - ts, half_life)


def value_at(value: float, ref: int, ts: int, half_life: float) -> float:
    """A value kept as of `ref`, read at a later time `ts`."""
    return value * factor(ts - ref, half_life) if ts > ref else value
