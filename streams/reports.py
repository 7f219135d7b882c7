"""What a worker reports about its shared knowledge: the `/models` view and the
Prometheus gauges of model health and state sizes. Read-only over the runtime's
state, which it is handed at construction."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from online_models.engine import PartitionEngine
from online_models.evaluation import BinaryScore
from online_models.events import Campaign
from online_models.knowledge import SharedKnowledge
from streams.metrics import Metrics
from streams.state_store import StateStore


class Reports:
    """`/models` and gauges."""

    def __init__(
        self,
        metrics: Metrics,
        knowledge_of: Callable[[], SharedKnowledge],
        engines: Mapping[int, PartitionEngine],
        users: StateStore,
        campaigns: Mapping[str, Campaign],
    ) -> None:
        self.metrics = metrics
        # A getter: a restore replaces the worker's knowledge object (streams/runtime.py).
        self.knowledge_of = knowledge_of
        self.engines = engines  # the runtime's own dict, so it follows assignments
        self.users = users
        self.campaigns = campaigns

    def model_report(self) -> dict[str, Any]:
        """Per-partition event counts and the worker's shared models, for `/models`."""
        k = self.knowledge_of()
        models = k.models
        return {
            "partitions": {str(p): {"events": e.events} for p, e in sorted(self.engines.items())},
            "knowledge": {
                "model_version": k.version(),
                "updates_applied": k.applied,
                "updates_pending": len(k.pending),
                "clock": k.clock,
                "click_weights": len(models.click.weights),
                "learned": {
                    "click": models.click.n_learned,
                    "conversion": models.conversion.n_learned,
                    "revenue": models.revenue.n_learned,
                },
                "scores": models.summary(),
            },
        }

    def update_gauges(self) -> None:
        """Model health and sizes of this worker's shared knowledge."""
        m = self.metrics
        k = self.knowledge_of()
        gated = k.models.gated()
        for name in ("click", "conversion"):
            score: BinaryScore = getattr(k.models, f"{name}_score")
            m.model_examples.labels(name).set(score.n)
            m.model_gated.labels(name).set(1 if name in gated else 0)
            recent = score.recent_summary()
            for predictor in ("model", "constant"):
                key = "logloss" if predictor == "model" else "constant_logloss"
                value = recent[key]
                if value is not None:
                    m.model_recent_logloss.labels(name, predictor).set(value)
            if score.n:
                for gauge, value in (
                    (m.model_logloss, score.logloss),
                    (m.model_constant_logloss, score.constant_logloss),
                    (m.model_auc, score.auc),
                    (m.model_calibration, score.calibration),
                ):
                    if not math.isnan(value):
                        gauge.labels(name).set(value)
        rev = k.models.revenue_score
        m.model_examples.labels("revenue").set(rev.n)
        if rev.n:
            m.revenue_mae.set(rev.abs_sum / rev.n)
        size = len(self.users)
        m.active_profiles.set(size)
        m.table_size.labels("users").set(size)
        m.table_size.labels("campaigns").set(len(self.campaigns))
        r = k.recommender
        if r.popularity:
            m.recommendation_coverage.set(r.coverage())
        for cid in k.pacer.campaigns:
            m.campaign_spend.labels(m.campaign_label(cid)).set(
                k.pacer.spend_ratio(k.campaign(cid), k.clock)
            )
