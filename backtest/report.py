"""report.json: what a replay measured, in one JSON document.

Everything except the `performance` key is a pure function of the inputs and the
settings, so two replays of the same files give equal reports minus `performance`.
NaN (e.g. AUC without positives) is written as null.

>>> t = ScoreTimeline(bucket_ms=10, max_points=3)
>>> for ts in (0, 5, 12, 25, 31, 47):
...     t.tick(ts, [])
>>> [label for label, _ in t.snapshots], t.width   # 4 boundaries > 3: width doubled
([0, 20, 40], 20)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson

from online_models.evaluation import BinaryScore
from online_models.knowledge import SharedKnowledge

MODELS = ("click", "conversion")
# Top-level keys and their JSON types; `performance` is the only non-deterministic one.
SCHEMA: dict[str, type] = {
    "schema_version": int,
    "inputs": list,
    "settings": dict,
    "counts": dict,
    "window": dict,
    "models": dict,
    "recommendations": dict,
    "bidding": dict,
    "performance": dict,
}
Scores = dict[str, BinaryScore]


def merged_scores(knowledges: Sequence[SharedKnowledge]) -> Scores:
    """Scores pooled over distinct knowledges (one when partitions share it)."""
    return {
        "click": BinaryScore.merged([k.models.click_score for k in knowledges]),
        "conversion": BinaryScore.merged([k.models.conversion_score for k in knowledges]),
    }


def score_diff(later: BinaryScore, earlier: BinaryScore) -> BinaryScore:
    """The labels scored between two cumulative snapshots of one score."""
    a, b = later.to_state(), earlier.to_state()
    return BinaryScore.from_state(
        {
            "bins": a["bins"],
            "n": a["n"] - b["n"],
            "loss_sum": a["loss_sum"] - b["loss_sum"],
            "p_sum": a["p_sum"] - b["p_sum"],
            "y_sum": a["y_sum"] - b["y_sum"],
            "pos": [x - y for x, y in zip(a["pos"], b["pos"], strict=True)],
            "neg": [x - y for x, y in zip(a["neg"], b["neg"], strict=True)],
        }
    )


class ScoreTimeline:
    """Cumulative merged scores at bucket boundaries of event time.

    A snapshot is taken before the first event at or after each boundary; when more
    than `max_points` exist the width doubles and each new bucket keeps its earliest
    snapshot, which is exact: no event fell between the boundary and that snapshot.
    """

    def __init__(self, bucket_ms: int = 3_600_000, max_points: int = 96) -> None:
        self.width = bucket_ms
        self.max_points = max_points
        self.origin: int | None = None
        self.next_boundary = 0
        self.snapshots: list[tuple[int, Scores]] = []

    def tick(self, ts: int, knowledges: Sequence[SharedKnowledge]) -> None:
        if ts < self.next_boundary:
            return
        if self.origin is None:
            self.origin = ts - ts % self.width
        label = ts - (ts - self.origin) % self.width
        self.snapshots.append((label, merged_scores(knowledges) if knowledges else {}))
        if len(self.snapshots) > self.max_points:
            self.width *= 2
            kept: dict[int, Scores] = {}
            for old, scores in self.snapshots:
                kept.setdefault(old - (old - self.origin) % self.width, scores)
            self.snapshots = list(kept.items())
        self.next_boundary = self.snapshots[-1][0] + self.width

    def buckets(self, end: Scores, end_ts: int) -> list[dict[str, Any]]:
        """Per bucket: the scores of labels learned inside it, and the running totals."""
        points = [*self.snapshots, (end_ts + 1, end)]
        out = []
        for (start, before), (stop, after) in pairwise(points):
            entry: dict[str, Any] = {"start_ms": start, "end_ms": stop}
            for m in MODELS:
                entry[m] = (
                    score_diff(after[m], before[m]).summary() if before else (after[m].summary())
                )
                entry[f"{m}_cumulative"] = after[m].summary()
            out.append(entry)
        return out


def model_section(
    knowledges: Sequence[SharedKnowledge], timeline: ScoreTimeline, end_ts: int
) -> dict[str, Any]:
    scores = merged_scores(knowledges)
    revenue = [k.models.revenue_score for k in knowledges]
    n = sum(r.n for r in revenue)
    return {
        **{m: {**scores[m].summary(), "calibration_curve": scores[m].curve()} for m in MODELS},
        "revenue": {
            "n": n,
            "mae": sum(r.abs_sum for r in revenue) / n if n else None,
            "mean_target": sum(r.y_sum for r in revenue) / n if n else None,
        },
        "by_time": timeline.buckets(scores, end_ts) if timeline.snapshots else [],
        "bucket_ms": timeline.width,
    }


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.write_bytes(
        orjson.dumps(
            _clean(report),
            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE,
        )
    )


def schema_errors(report: dict[str, Any]) -> list[str]:
    """Missing or mistyped top-level keys (empty when the report is well-formed).

    >>> schema_errors({"counts": []})[:2]
    ['missing schema_version', 'missing inputs']
    """
    errors = []
    for key, kind in SCHEMA.items():
        if key not in report:
            errors.append(f"missing {key}")
        elif not isinstance(report[key], kind):
            errors.append(f"{key} is {type(report[key]).__name__}, want {kind.__name__}")
    perf = report.get("performance", {})
    for key in ("events_per_second", "peak_memory_mb", "seconds"):
        if not isinstance(perf.get(key), int | float):
            errors.append(f"performance.{key} missing or not a number")
    return errors
