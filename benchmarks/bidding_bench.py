"""Value bidding at equal spend: constant bid, the engine's adjusted bids and an oracle.

For the known-model market (backtest/truth.py, budgets 1/2 and 1/16 of the market's
price per day; campaigns buying clicks, then value) and Open Bandit (real clicks,
invented prices, same fractions), prints
per dataset and budget: spend, wins, clicks, conversions (and their expected numbers
from the true probabilities), the pacing errors, and the share of the oracle's gain
over the constant bid that the adjusted policy captures.

    .venv/bin/python benchmarks/bidding_bench.py [--users 3000] [--days 4]
        [--fractions 0.5 0.0625] [--objectives clicks value] [--no-open-bandit]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import orjson

from backtest.bidcheck import open_bandit_missing, open_bandit_run, table, truth_run
from backtest.truth import TruthParams


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.5, 1 / 16])
    parser.add_argument("--objectives", nargs="+", default=["clicks", "value"])
    parser.add_argument("--no-open-bandit", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for objective in args.objectives:
            for f in args.fractions:
                params = TruthParams(
                    n_users=args.users, days=args.days, budget_fraction=f, objective=objective
                )
                rows.append(truth_run(params, work))
                print(f"  done: {rows[-1]['dataset']}", file=sys.stderr)
        why = open_bandit_missing()
        if why:
            print(f"skipping Open Bandit: {why}", file=sys.stderr)
        elif not args.no_open_bandit:
            for f in args.fractions:
                rows.append(open_bandit_run(work, f))
                print(f"  done: {rows[-1]['dataset']}", file=sys.stderr)
    print(table(rows))
    if args.json:
        args.json.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
