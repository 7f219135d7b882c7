"""The Prometheus counters and histograms one handled record moves."""

from __future__ import annotations

import time

from online_models.outputs import BidAdjustment, Recommendation
from online_models.pipeline import Step
from streams.metrics import Metrics
from streams.settings import Settings


class StepMetrics:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics

    def observe(self, topic: str, step: Step, started: float) -> None:
        """`started`: the `time.perf_counter()` when the record reached the handler."""
        m = self.metrics
        if step.reason is not None:
            m.dead_letters.labels(topic, step.reason).inc()
        elif step.repartitioned:
            m.repartitioned.labels(topic).inc()
        elif step.duplicate:
            m.duplicates_skipped.labels(topic).inc()
        else:
            m.events_in.labels(topic, step.event_type).inc()
            m.event_time_lag.labels(topic).observe(max(0.0, time.time() - step.event_ts / 1000))
        for o in step.outputs:
            if isinstance(o, Recommendation):
                m.events_out.labels(self.settings.topic_recommendations).inc()
                m.recommendations.labels(o.strategy).inc()
            elif isinstance(o, BidAdjustment):
                m.events_out.labels(self.settings.topic_bid_adjustments).inc()
                if o.user_id is not None:
                    m.bid_multiplier.observe(o.multiplier)
                else:
                    m.pacing_factor.labels(m.campaign_label(o.campaign_id)).set(o.pacing_factor)
        if step.reason is not None:
            m.events_out.labels(self.settings.topic_dead_letter).inc()
        m.processing_latency.labels(topic).observe(time.perf_counter() - started)
