"""Uplift vs response-model targeting on the known-truth promotions market.

Trains on seed 1 and scores on held-out seed 2 (seed 3 was the tuning split), printing
the learned uplift, the oracle (true uplift) and the response-model baseline side by
side: Qini coefficients, captured share of the oracle's Qini, and true incremental
purchases at a 30 % offer budget.

    .venv/bin/python benchmarks/uplift_bench.py
"""

from __future__ import annotations

import time

from backtest.promo_truth import evaluate


def main() -> None:
    t0 = time.perf_counter()
    r = evaluate(train_seed=1, test_seed=2)
    q, inc = r["qini"], r["incremental"]
    print(
        f"train seed {r['train_seed']} ({r['n_train']}), test seed {r['test_seed']} ({r['n_test']})"
    )
    print(f"chosen learner: {r['model']}  progressive qini: {r['progressive_qini']}")
    print(f"{'':18}{'qini':>10}{'incremental@' + str(r['budget_share']):>18}")
    for name, qk, ik in (
        ("learned uplift", "learned", "learned"),
        ("response model", "response_model", "response_model"),
        ("oracle", "oracle", "oracle"),
    ):
        print(f"{name:18}{q[qk]:10.1f}{inc[ik]:18.1f}")
    print(f"promotions.qini.captured = {q['captured']:.3f}  (goal >= 0.80)")
    print(f"promotions.vs_response_model = {r['vs_response_model']:.2f}  (goal >= 1.5)")
    print(f"elapsed {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
