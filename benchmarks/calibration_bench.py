"""Every real dataset in ../shared/data through the replay: which produce click and
conversion labels, and for those, each model's progressive log-loss beside the running
base-rate constant's (same replay), its calibration, AUC and health gate.

    .venv/bin/python benchmarks/calibration_bench.py [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from backtest.importers import run_import
from backtest.replay import ReplayOptions, replay

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OBD = DATA / "open_bandit_random"
DATASETS: list[tuple[str, str, list[Path]]] = [
    ("open-bandit all", "open-bandit", [OBD / "all"]),
    ("open-bandit men", "open-bandit", [OBD / "men"]),
    ("open-bandit women", "open-bandit", [OBD / "women"]),
    ("open-bandit all+men+women", "open-bandit", [OBD / c for c in ("all", "men", "women")]),
    ("taobao", "taobao", [DATA / "taobao_userbehavior_sample" / "UserBehavior.csv"]),
    (
        "yoochoose",
        "yoochoose",
        [DATA / "yoochoose_rsc15_100k" / "yoochoose-clicks-100k_train_full.txt"],
    ),
    ("olist", "olist", [DATA / "olist_orders_sample"]),
    ("online-retail", "online-retail", [DATA / "uci_online_retail_sample" / "OnlineRetail.csv"]),
]


def measure(work: Path, name: str, fmt: str, sources: list[Path]) -> dict[str, Any]:
    files = []
    for k, src in enumerate(sources):
        out = work / f"{fmt}-{k}.jsonl.gz"
        run_import(fmt, [str(src)], str(out))
        files.append(out)
    report = replay(files, work / "report", ReplayOptions())
    row: dict[str, Any] = {"dataset": name, "events": report["counts"]["events_by_topic"]}
    for model in ("click", "conversion"):
        m = report["models"][model]
        row[model] = {k: m[k] for k in ("n", "positives", "logloss", "constant_logloss",
                                        "calibration", "auc", "gated")}  # fmt: skip
    return row


def fmt(x: Any, digits: int = 5) -> str:
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"{DATA} is absent: no real data to measure", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind, sources in DATASETS:
            if all(s.exists() for s in sources):
                work = Path(tmp) / name.replace(" ", "_").replace("+", "_")
                rows.append(measure(work, name, kind, sources))
                print(f"  done: {name}", file=sys.stderr)
    print("| dataset | model | labels | positives | log-loss | constant | gap | calibration "
          "| AUC | gate |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        for model in ("click", "conversion"):
            m = r[model]
            if not m["n"]:
                print(f"| {r['dataset']} | {model} | 0 | - | - | - | - | - | - | no labels |")
                continue
            gap = m["logloss"] - m["constant_logloss"]
            print(f"| {r['dataset']} | {model} | {m['n']} | {m['positives']} | {fmt(m['logloss'])} "
                  f"| {fmt(m['constant_logloss'])} | {gap:+.5f} | {fmt(m['calibration'], 3)} "
                  f"| {fmt(m['auc'], 3)} | {m['gated'] or 'open'} |")  # fmt: skip
    if args.json:
        args.json.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
