"""The known-truth promotions market as replay input: offers, exposures and orders.

`market_events` writes the exposures of `backtest.promo_truth` in event time (one
every `spacing_ms`, the training seed's then the held-out seed's, users named by seed
so the two never meet), one offer definition before them, and for each exposure whose
outcome is a purchase an order within the offer's window. The replay
(`backtest.promo_report`) then learns and scores them as the worker would, and its
report gives the Qini figures of issue 22, clause 3.

>>> evs = list(market_events(1, 2, n_train=3, n_test=2))
>>> [e["topic"] for e in evs][:2], sum(e["topic"] == "offer-exposures" for e in evs)
(['promotions', 'offer-exposures'], 5)
>>> all(a["ts"] <= b["ts"] for a, b in zip(evs[1:], evs[2:]))
True
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from backtest.promo_truth import N_TRAIN, P_TREATED, exposures

START_MS = 1_767_571_200_000  # 2026-01-05 00:00 UTC
SPACING_MS = 3_000
WINDOW_S = 86_400
OFFER = {
    "offer_id": "promo-10",
    "cost": 1.0,
    "margin": 10.0,
    "budget": 0.0,
    "control_share": 1.0 - P_TREATED,
    "window_s": WINDOW_S,
}


def market_events(
    train_seed: int,
    test_seed: int,
    n_train: int = N_TRAIN,
    n_test: int = 40_000,
    start_ms: int = START_MS,
    spacing_ms: int = SPACING_MS,
) -> Iterator[dict[str, Any]]:
    """Replay lines (`topic` first), sorted by event time."""
    rng = random.Random(f"orders-{train_seed}-{test_seed}")
    yield {"topic": "promotions", **OFFER}
    lines: list[tuple[int, int, dict[str, Any]]] = []
    n = 0
    for seed, count in ((train_seed, n_train), (test_seed, n_test)):
        for i, ex in enumerate(exposures(seed, count)):
            ts = start_ms + n * spacing_ms
            user = f"p{seed}-{i}"
            features = {k: round(v, 6) for k, v in ex["x"].items() if k != "bias"}
            lines.append(
                (
                    ts,
                    n,
                    {
                        "topic": "offer-exposures",
                        "event_id": f"x{seed}-{i}",
                        "ts": ts,
                        "user_id": user,
                        "offer_id": OFFER["offer_id"],
                        "treated": ex["treated"],
                        "features": features,
                        "segment": ex["segment"],
                        "true_uplift": round(ex["true_uplift"], 6),
                    },
                )
            )
            if ex["bought"]:
                at = ts + rng.randrange(1_000, WINDOW_S * 500)  # within half the window
                order = {
                    "topic": "orders",
                    "order_id": f"o{seed}-{i}",
                    "ts": at,
                    "user_id": user,
                    "items": [{"item_id": "promo-item", "quantity": 1, "price": 20.0}],
                }
                lines.append((at, n, order))
            n += 1
    lines.sort(key=lambda t: (t[0], t[1]))
    for _, _, line in lines:
        yield line
