"""Model quality on the known-model market (backtest/truth.py) against the truth.

Prints, for the default market (or --users/--days/--seed), the click model's AUC
beside the true probabilities' AUC on the same labelled impressions (progressive and
on the last day), and the conversion model's calibration at click time with the
delayed-feedback correction (fake negatives, the default) and without it (negatives
wait out the 24 h window), from one run each:

    .venv/bin/python benchmarks/truth_bench.py [--users 3000] [--days 4] [--seed 1]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from backtest.truth import TruthParams, generate_truth
from backtest.truthcheck import run_truth
from online_models.config import EngineConfig


def main() -> int:
    defaults = TruthParams()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=defaults.n_users)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args()
    params = replace(defaults, n_users=args.users, days=args.days, seed=args.seed)
    stream = generate_truth(params)
    print(f"market: {params}")
    for name, fake in (("fake negatives (default)", 1), ("wait out the window", 0)):
        started = time.perf_counter()
        s = run_truth(stream, EngineConfig(fake_negatives=fake)).summary()
        took = time.perf_counter() - started
        print(f"\n{name}  ({took:.1f} s)")
        print(f"  click labels {s['click_labels']}: AUC model {s['click_auc_model']} vs truth "
              f"{s['click_auc_truth']}; last day {s['last_day_auc_model']} vs "
              f"{s['last_day_auc_truth']}; calibration {s['click_calibration']}")  # fmt: skip
        print(f"  conversion labels {s['conversion_labels']}: calibration at click time "
              f"{s['conversion_calibration']} (truth {s['conversion_calibration_truth']}), "
              f"AUC {s['conversion_auc_model']} vs truth {s['conversion_auc_truth']}")  # fmt: skip
        print(f"  gated at the end: {s['gated'] or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
