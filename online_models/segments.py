"""Online segmentation of users by recency, frequency and monetary value (River KMeans).

Users without orders are `prospect`; buyers get `s0..sN-1`, clusters ranked by
monetary centre so that labels stay meaningful (`s0` the most valuable).

>>> seg = Segmenter(n_clusters=3, seed=1)
>>> seg.assign({"r": 0.1, "f": 2.0, "m": 6.0}).startswith("s")
True
"""

from __future__ import annotations

import collections
import functools
import random
from typing import Any

from river import cluster

FEATURES = ("r", "f", "m")


class Segmenter:
    def __init__(self, n_clusters: int = 4, halflife: float = 0.05, seed: int = 42) -> None:
        self.n_clusters = n_clusters
        self.halflife = halflife
        self.seed = seed
        self.model = cluster.KMeans(n_clusters=n_clusters, halflife=halflife, seed=seed)
        # Materialise every centre coordinate now so the state is complete and a
        # restored model does not draw fresh random coordinates.
        for c in self.model.centers.values():
            for f in FEATURES:
                _ = c[f]
        self.n_learned = 0

    def assign(self, rfm: dict[str, float]) -> str:
        """Learn from one buyer's RFM and return their segment label."""
        k = self.model.learn_predict_one(rfm)
        self.n_learned += 1
        return f"s{self._rank()[k]}"

    def label(self, rfm: dict[str, float]) -> str:
        return f"s{self._rank()[self.model.predict_one(rfm)]}"

    def _rank(self) -> dict[int, int]:
        order = sorted(self.model.centers, key=lambda c: (-self.model.centers[c]["m"], c))
        return {c: i for i, c in enumerate(order)}

    def to_state(self) -> dict[str, Any]:
        return {
            "n_clusters": self.n_clusters,
            "halflife": self.halflife,
            "seed": self.seed,
            "centers": {str(k): dict(v) for k, v in self.model.centers.items()},
            "n_learned": self.n_learned,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Segmenter:
        s = cls(int(state["n_clusters"]), float(state["halflife"]), int(state["seed"]))
        gauss = functools.partial(random.Random(s.seed).gauss, 0, 1)
        s.model.centers = {
            int(k): collections.defaultdict(gauss, {f: float(x) for f, x in v.items()})
            for k, v in state["centers"].items()
        }
        s.n_learned = int(state["n_learned"])
        return s
