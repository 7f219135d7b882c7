"""Does quality hold as partitions grow? The real-data check behind issue 9.

Two public datasets, each replayed at several partition counts through the live
engine (`backtest.replay`), with one shared knowledge or one knowledge per partition:

* YOOCHOOSE clicks, split by time (`backtest.split`, its last day = test): the replay
  learns from the training sessions, then every next click of a test session is
  judged (`every_position`, from the split time), against the popularity baseline
  of the same run: HR@20 and MRR@20.
* Open Bandit (all, men, women): progressive click-model AUC and log-loss.

`benchmarks/sharing_bench.py` prints the table; `tests/test_shared_knowledge.py`
asserts the spread across partition counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from backtest.importers import run_import
from backtest.replay import ReplayOptions, replay
from backtest.split import split_sessions

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
YOOCHOOSE = DATA / "yoochoose_rsc15_100k" / "yoochoose-clicks-100k_train_full.txt"
OPEN_BANDIT = [DATA / "open_bandit_random" / c for c in ("all", "men", "women")]


def data_missing() -> str | None:
    """Why the check cannot run here (None when the datasets are present)."""
    missing = [str(p) for p in (YOOCHOOSE, *OPEN_BANDIT) if not p.exists()]
    return f"public datasets absent: {', '.join(missing)}" if missing else None


def prepare(work: Path) -> dict[str, Any]:
    """Split and import both datasets into `work`; the replay inputs and split time."""
    stats = split_sessions(YOOCHOOSE, work / "yoochoose")
    yc = work / "yoochoose" / "events.jsonl.gz"
    run_import("yoochoose", [stats.train, stats.test], str(yc))
    obd = work / "open_bandit.jsonl.gz"
    run_import("open-bandit", [str(p) for p in OPEN_BANDIT], str(obd))
    return {"yoochoose": yc, "split_ts": stats.split_ts, "open_bandit": obd}


def measure(
    inputs: dict[str, Any],
    partitions: int,
    work: Path,
    shared: bool = True,
    delay_ms: int = 0,
) -> dict[str, Any]:
    """One row: next-item quality on YOOCHOOSE and the click model on Open Bandit."""
    tag = f"p{partitions}-{'shared' if shared else 'own'}-d{delay_ms}"
    base = ReplayOptions(partitions=partitions, shared=shared, knowledge_delay_ms=delay_ms)
    yc = replay(
        [inputs["yoochoose"]],
        work / f"yc-{tag}",
        replace(base, evaluate_from=inputs["split_ts"], every_position=True),
    )
    ob = replay([inputs["open_bandit"]], work / f"obd-{tag}", base)
    recs, click = yc["recommendations"], ob["models"]["click"]
    return {
        "partitions": partitions,
        "knowledge": "shared" if shared else "per partition",
        "delay_ms": delay_ms,
        "positions": recs["evaluated"],
        "hr20": recs["model"]["hit@20"],
        "mrr20": recs["model"]["mrr@20"],
        "pop_hr20": recs["baseline"]["hit@20"],
        "pop_mrr20": recs["baseline"]["mrr@20"],
        "labels": click["n"],
        "auc": click["auc"],
        "logloss": click["logloss"],
    }


def spread(rows: Sequence[dict[str, Any]], key: str) -> float:
    """Largest minus smallest value of `key` over rows."""
    values = [float(r[key]) for r in rows]
    return max(values) - min(values)


def table(rows: Sequence[dict[str, Any]]) -> str:
    head = (
        f"{'knowledge':<14}{'delay ms':>9}{'P':>4}{'positions':>10}{'HR@20':>8}{'MRR@20':>8}"
        f"{'pop HR@20':>10}{'pop MRR@20':>11}{'labels':>8}{'AUC':>8}{'logloss':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['knowledge']:<14}{r['delay_ms']:>9}{r['partitions']:>4}{r['positions']:>10}"
            f"{r['hr20']:>8.4f}{r['mrr20']:>8.4f}{r['pop_hr20']:>10.4f}{r['pop_mrr20']:>11.4f}"
            f"{r['labels']:>8}{r['auc']:>8.4f}{r['logloss']:>9.5f}"
        )
    return "\n".join(lines)


def dump(rows: Sequence[dict[str, Any]]) -> bytes:
    return orjson.dumps(list(rows), option=orjson.OPT_INDENT_2)
