"""Off-policy estimates (IPS, self-normalised IPS, doubly robust) checked on real
randomised logs: the Open Bandit random logs (issue 22, clause 4), numpy only.

The item shown is the offer. Protocol, on one log sorted by time: the first third
learns the target policy (the service's choice: uniform over the `top` items of
highest smoothed click rate) and the reward model of DR (the same per-item rates);
the rest is split by row parity. The even rows give the estimates; the odd rows the
truth, on-policy: under uniform logging the odd rows whose logged item the policy
could have chosen are a sample of the policy's own traffic (replay, Li et al. 2011),
so their click rate is its click rate. Bootstrap intervals resample the even rows.

>>> p = np.full(4, 0.5); a = np.array([0, 1, 0, 1]); r = np.array([1.0, 0.0, 0.0, 0.0])
>>> pi = np.array([[1.0, 0.0]] * 4); q = np.array([[0.4, 0.1]] * 4)
>>> float(ips(pi, a, r, p)), float(snips(pi, a, r, p)), float(dr(pi, a, r, p, q))
(0.5, 0.5, 0.5)
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

PRIOR_CLICKS, PRIOR_SHOWS = 1.0, 200.0  # smoothing toward a 0.5 % click rate


def _weights(pi: np.ndarray, a: np.ndarray, p: np.ndarray) -> np.ndarray:
    return pi[np.arange(len(a)), a] / p


def ips(pi: np.ndarray, a: np.ndarray, r: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.mean(_weights(pi, a, p) * r)


def snips(pi: np.ndarray, a: np.ndarray, r: np.ndarray, p: np.ndarray) -> np.ndarray:
    w = _weights(pi, a, p)
    return np.sum(w * r) / np.sum(w)


def dr(pi: np.ndarray, a: np.ndarray, r: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    w = _weights(pi, a, p)
    direct = np.sum(pi * q, axis=1)
    return np.mean(direct + w * (r - q[np.arange(len(a)), a]))


def load(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(item, click, propensity) sorted by time, and the number of items."""
    with open(path, newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda row: row["timestamp"])
    a = np.array([int(row["item_id"]) for row in rows])
    r = np.array([float(row["click"]) for row in rows])
    p = np.array([float(row["propensity_score"]) for row in rows])
    return a, r, p, int(a.max()) + 1


def evaluate(path: Path, top: int = 10, boot: int = 500, seed: int = 0) -> dict[str, Any]:
    a, r, p, n_items = load(path)
    cut = len(a) // 3
    clicks = np.bincount(a[:cut], weights=r[:cut], minlength=n_items)
    shows = np.bincount(a[:cut], minlength=n_items)
    rate = (clicks + PRIOR_CLICKS) / (shows + PRIOR_SHOWS)
    chosen = np.argsort(-rate, kind="stable")[:top]
    policy = np.zeros(n_items)
    policy[chosen] = 1.0 / top
    rest = np.arange(cut, len(a))
    est, tru = rest[rest % 2 == 0], rest[rest % 2 == 1]
    matched = tru[policy[a[tru]] > 0]
    truth = float(np.mean(r[matched]))

    def estimates(idx: np.ndarray) -> dict[str, float]:
        pi = np.broadcast_to(policy, (len(idx), n_items))
        q = np.broadcast_to(rate, (len(idx), n_items))
        return {
            "IPS": float(ips(pi, a[idx], r[idx], p[idx])),
            "SNIPS": float(snips(pi, a[idx], r[idx], p[idx])),
            "DR": float(dr(pi, a[idx], r[idx], p[idx], q)),
        }

    point = estimates(est)
    rng = np.random.default_rng(seed)
    draws = [estimates(rng.choice(est, len(est))) for _ in range(boot)]
    return {
        "data": f"{path.name}: {len(a):,} uniform-random impressions, {n_items} items",
        "policy": f"uniform over the top {top} items by click rate on the first third",
        "truth": truth,
        "truth_events": len(matched),
        "truth_clicks": int(r[matched].sum()),
        "logged_rate": float(np.mean(r[est])),
        "estimators": {
            name: {
                "estimate": v,
                "ci": [float(np.quantile([d[name] for d in draws], q)) for q in (0.025, 0.975)],
                "relative_error": abs(v - truth) / truth if truth else None,
            }
            for name, v in point.items()
        },
    }
