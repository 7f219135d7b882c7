"""Off-policy estimators (issue 22, clause 4): unbiased on a simulated uniform log with
a known policy value, and the Open Bandit check on the real random logs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backtest.ope import dr, evaluate, ips, snips

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "open_bandit_random"


def test_estimators_recover_a_known_policy_value_from_a_uniform_log():
    rng = np.random.default_rng(3)
    n, k = 200_000, 5
    ctr = np.array([0.02, 0.05, 0.10, 0.01, 0.03])
    a = rng.integers(0, k, n)
    r = (rng.random(n) < ctr[a]).astype(float)
    p = np.full(n, 1.0 / k)
    target = np.array([0.0, 0.5, 0.5, 0.0, 0.0])  # known value: .075
    pi = np.broadcast_to(target, (n, k))
    biased_q = np.broadcast_to(ctr * 2, (n, k))  # DR stays unbiased with a wrong model
    for value in (ips(pi, a, r, p), snips(pi, a, r, p), dr(pi, a, r, p, biased_q)):
        assert value == pytest.approx(0.075, rel=0.03)
    # The direct method alone would be off by the model's bias: 2x.
    assert float(np.mean(np.sum(pi * biased_q, axis=1))) == pytest.approx(0.15)


@pytest.mark.skipif(not DATA.exists(), reason=f"Open Bandit random logs absent: {DATA}")
def test_open_bandit_estimates_bracket_the_on_policy_truth():
    r = evaluate(DATA / "men" / "men.csv", boot=200)
    assert r["truth_events"] > 500  # the policy's items were shown often enough
    for e in r["estimators"].values():
        lo, hi = e["ci"]
        assert lo <= e["estimate"] <= hi
        assert lo <= r["truth"] <= hi  # the truth lies inside every 95 % interval
