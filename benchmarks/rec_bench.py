"""Recommendations (issue 10): HR@10/20, MRR@10/20 and the median / p99 cost of one
recommendation in the replay, for each algorithm kept and the popularity baseline,
on YOOCHOOSE (last day = test) and the Taobao sample.

    .venv/bin/python benchmarks/rec_bench.py                 # test day, 4 partitions + 16
    .venv/bin/python benchmarks/rec_bench.py --validation    # tuning: the day before it
    .venv/bin/python benchmarks/rec_bench.py --validation \\
        --grid rec_knn_weight=0.3,0.5,1 rec_repeat_weight=1,2   # one replay per value

`--validation` replays only the training part, split again (its last day =
validation): settings are chosen there, never on the test day. `--grid` varies one
`EngineConfig` field at a time around the defaults.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from backtest.recbench import (
    ALGORITHMS,
    data_missing,
    measure,
    prepare_taobao,
    prepare_yoochoose,
    table,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validation", action="store_true")
    parser.add_argument("--grid", nargs="*", default=[], metavar="FIELD=V1,V2")
    parser.add_argument("--no-taobao", action="store_true")
    args = parser.parse_args()
    why = data_missing()
    if why:
        print(why, file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        events, split_ts = prepare_yoochoose(work, validation=args.validation)
        if args.grid:
            runs = [("defaults", {})]
            for spec in args.grid:
                field, values = spec.split("=")
                runs += [(f"{field}={v}", {field: float(v)}) for v in values.split(",")]
        else:
            runs = list(ALGORITHMS.items())
        for name, over in runs:
            rows.append(measure(events, work, name, over, 4, split_ts))
            print(f"  done: {name}", file=sys.stderr)
        if not args.grid and not args.validation:
            rows.append(measure(events, work, "blend (default)", {}, 16, split_ts))
        print(f"YOOCHOOSE rsc15-100k, {'validation' if args.validation else 'test'} day")
        print(table(rows))
        blend = rows[-1]
        print(
            f"popularity (same run): HR@10 {blend['pop hit@10']:.4f} HR@20 "
            f"{blend['pop hit@20']:.4f} MRR@10 {blend['pop mrr@10']:.4f} "
            f"MRR@20 {blend['pop mrr@20']:.4f}"
        )
        if not args.no_taobao and not args.validation and not args.grid:
            tb = prepare_taobao(work)
            tb_rows = [
                measure(tb, work, name, ALGORITHMS[name], 4)
                for name in ("co-visitation (before)", "blend (default)")
            ]
            print("\nTaobao UserBehavior sample, every position")
            print(table(tb_rows))
            print(f"popularity (same run): HR@20 {tb_rows[-1]['pop hit@20']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
