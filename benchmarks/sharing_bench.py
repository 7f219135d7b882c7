"""Quality as partitions grow: HR@20 / MRR@20 (YOOCHOOSE, last day as test, every
next-item position, popularity baseline of the same run) and the click model's
progressive AUC / log-loss (Open Bandit) at 1, 4 and 16 partitions, side by side from
one run: with one shared knowledge (issue 9), with one knowledge per partition (how
the service learned before), and with the shared knowledge seen late.

    .venv/bin/python benchmarks/sharing_bench.py [--partitions 1 4 16] [--delays 0 60000]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from backtest.sharing import data_missing, dump, measure, prepare, spread, table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--delays", type=int, nargs="+", default=[0, 60_000])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    why = data_missing()
    if why:
        print(why, file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        inputs = prepare(work)
        for shared, delays in ((True, args.delays), (False, [0])):
            for delay in delays:
                for p in args.partitions:
                    rows.append(measure(inputs, p, work, shared=shared, delay_ms=delay))
                    print(f"  done: {rows[-1]['knowledge']}, delay {delay}, P={p}", file=sys.stderr)
    print(table(rows))
    print()
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["knowledge"], r["delay_ms"]), []).append(r)
    for (knowledge, delay), group in groups.items():
        print(
            f"spread over P, {knowledge}, delay {delay} ms: HR@20 {spread(group, 'hr20'):.4f}"
            f"  AUC {spread(group, 'auc'):.4f}  logloss {spread(group, 'logloss'):.5f}"
        )
    if args.json:
        args.json.write_bytes(dump(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
