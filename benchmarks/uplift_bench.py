"""Uplift vs response-model targeting on the known-truth promotions market.

Each pair trains on one seed and scores on the next (held out); the learner's settings
(`backtest.promo_truth.N_TRAIN`, learning rate) were chosen on `TUNING_SEEDS` only.
Printed side by side per held-out seed: the captured share of the oracle's Qini
coefficient, the same share for the posterior uplift (the ceiling of any learner of
these features), and true incremental purchases at a 30 % offer budget for the learned
uplift, the response model (p(purchase)) and the oracle.

    .venv/bin/python benchmarks/uplift_bench.py            # held-out seeds
    .venv/bin/python benchmarks/uplift_bench.py --tuning   # the tuning seeds
"""

from __future__ import annotations

import argparse
import statistics
import time

from backtest.promo_truth import HELD_OUT_SEEDS, TUNING_SEEDS, evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tuning", action="store_true", help="score the tuning seeds instead")
    args = ap.parse_args()
    pairs = TUNING_SEEDS if args.tuning else HELD_OUT_SEEDS
    t0 = time.perf_counter()
    print(
        f"{'train->test':>12}{'model':>22}{'captured':>10}{'ceiling':>9}"
        f"{'inc learned':>13}{'inc resp':>10}{'inc oracle':>12}{'vs resp':>9}"
    )
    captured, ratio = [], []
    for train, test in pairs:
        r = evaluate(train_seed=train, test_seed=test)
        q, inc = r["qini"], r["incremental"]
        captured.append(q["captured"])
        ratio.append(r["vs_response_model"])
        print(
            f"{f'{train}->{test}':>12}{r['model']:>22}{q['captured']:10.3f}"
            f"{q['posterior_captured']:9.3f}{inc['learned']:13.1f}{inc['response_model']:10.1f}"
            f"{inc['oracle']:12.1f}{r['vs_response_model']:9.1f}"
        )
    print(
        f"promotions.qini.captured: mean {statistics.mean(captured):.3f}, min "
        f"{min(captured):.3f}, max {max(captured):.3f} (goal >= 0.80)"
    )
    print(f"promotions.vs_response_model: min {min(ratio):.1f} (goal >= 1.5)")
    print(f"n_train {r['n_train']}, n_test {r['n_test']}; elapsed {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
