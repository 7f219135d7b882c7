"""Next-item quality and cost of each recommender kept (issue 10), on real data.

YOOCHOOSE rsc15-100k clicks are split by time with `backtest.split` (last day =
test). The *test* replay learns online from every event and judges every test
position (`--evaluate-from` the split time, a list served at every position).
For tuning, the training part is split again the same way (its last day =
validation) and only that is replayed: the test day is never looked at while
choosing settings (`benchmarks/rec_bench.py --validation`).

Each algorithm is a set of `ECOM_DOMAIN_*` overrides of the one blended recommender
(`online_models.blend`); the popularity baseline is measured in every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backtest.importers import run_import
from backtest.replay import ReplayOptions, replay
from backtest.split import split_sessions

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
YOOCHOOSE = DATA / "yoochoose_rsc15_100k" / "yoochoose-clicks-100k_train_full.txt"
TAOBAO = DATA / "taobao_userbehavior_sample" / "UserBehavior.csv"

# The recommender before issue 10: symmetric co-visitation, affinity, trending, and
# never the item in view.
COVISITATION = {
    "rec_sr_weight": 0.0,
    "rec_sr_prev_weight": 0.0,
    "rec_knn_weight": 0.0,
    "rec_repeat_weight": 0.0,
    "rec_covis_weight": 1.0,
    "rec_covis_lookback": 3,
    "rec_covis2_weight": 0.0,
    "rec_affinity_weight": 0.3,
    "rec_trending_weight": 0.05,
    "rec_allow_seen": 2,
}
ALGORITHMS: dict[str, dict[str, float]] = {
    "co-visitation (before)": COVISITATION,
    "sequential rules": {
        "rec_knn_weight": 0.0,
        "rec_repeat_weight": 0.0,
        "rec_covis_weight": 0.0,
        "rec_covis2_weight": 0.0,
    },
    "session kNN (V-SKNN/STAN-like)": {
        "rec_sr_weight": 0.0,
        "rec_sr_prev_weight": 0.0,
        "rec_knn_weight": 1.0,
        "rec_repeat_weight": 0.0,
        "rec_covis_weight": 0.0,
        "rec_covis2_weight": 0.0,
    },
    # The first blend of issue 10: one hop of co-visitation, of the latest 3 items.
    "blend, one co-visit hop": {"rec_covis2_weight": 0.0, "rec_covis_lookback": 3},
    "blend (default)": {},
}


def data_missing(*paths: Path) -> str | None:
    missing = [str(p) for p in (paths or (YOOCHOOSE, TAOBAO)) if not p.exists()]
    return f"public datasets absent: {', '.join(missing)}" if missing else None


def prepare_yoochoose(work: Path, validation: bool = False) -> tuple[Path, int]:
    """Split (and for `validation` split the training part again), import; return the
    replay input and the time from which positions are judged."""
    stats = split_sessions(YOOCHOOSE, work / "split")
    if validation:
        stats = split_sessions(stats.train, work / "validation")
    events = work / ("validation.jsonl.gz" if validation else "test.jsonl.gz")
    run_import("yoochoose", [stats.train, stats.test], str(events))
    return events, stats.split_ts


def prepare_taobao(work: Path) -> Path:
    events = work / "taobao.jsonl.gz"
    run_import("taobao", [str(TAOBAO)], str(events))
    return events


def measure(
    events: Path,
    work: Path,
    name: str,
    overrides: dict[str, float],
    partitions: int = 4,
    evaluate_from: int | None = None,
) -> dict[str, Any]:
    """One replay with `overrides`: next-item figures, popularity, cost, seen/new."""
    tag = "".join(c if c.isalnum() else "-" for c in name) + f"-p{partitions}"
    report = replay(
        [events],
        work / tag,
        ReplayOptions(partitions=partitions, domain=dict(overrides), evaluate_from=evaluate_from),
    )
    recs, perf = report["recommendations"], report["performance"]
    cost, cpu = perf["recommend_us"], perf["recommend_cpu_us"]
    return {
        "name": name,
        "partitions": partitions,
        "positions": recs["evaluated"],
        **{f"{m}": recs["model"][m] for m in ("hit@10", "hit@20", "mrr@10", "mrr@20")},
        **{f"pop {m}": recs["baseline"][m] for m in ("hit@10", "hit@20", "mrr@10", "mrr@20")},
        "median_us": cost["median"],
        "p99_us": cost["p99"],
        "cpu_median_us": cpu["median"],
        "cpu_p99_us": cpu["p99"],
        "new_hit@20": recs["targets"]["hit@20_new"],
        "share_hits_new": recs["targets"]["share_of_hits@20_on_new"],
    }


def table(rows: Sequence[dict[str, Any]]) -> str:
    head = (
        f"{'algorithm':<32}{'P':>3}{'positions':>10}{'HR@10':>8}{'HR@20':>8}{'MRR@10':>8}"
        f"{'MRR@20':>8}{'med us':>8}{'p99 us':>9}{'cpu med':>8}{'cpu p99':>9}"
        f"{'new HR@20':>10}{'new share':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['name']:<32}{r['partitions']:>3}{r['positions']:>10}{r['hit@10']:>8.4f}"
            f"{r['hit@20']:>8.4f}{r['mrr@10']:>8.4f}{r['mrr@20']:>8.4f}{r['median_us']:>8.1f}"
            f"{r['p99_us']:>9.1f}{r['cpu_median_us']:>8.1f}{r['cpu_p99_us']:>9.1f}"
            f"{r['new_hit@20'] or 0:>10.4f}{r['share_hits_new'] or 0:>10.3f}"
        )
    return "\n".join(lines)
