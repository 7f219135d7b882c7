"""Prometheus metrics of the worker. Labels never carry user or item ids.

Campaign labels are capped: the first `CAMPAIGN_LABEL_CAP` campaigns seen keep their
own label, later ones share `other`, so a campaign explosion cannot explode series.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

CAMPAIGN_LABEL_CAP = 20
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 86400)
SNAPSHOT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MULTIPLIER_BUCKETS = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0)


class Metrics:
    """All series in one registry, so tests can build isolated instances."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.events_in = Counter(
            "ecom_events_in",
            "Input events accepted, by topic and event type",
            ["topic", "type"],
            registry=r,
        )
        self.events_out = Counter(
            "ecom_events_out", "Output events sent, by topic", ["topic"], registry=r
        )
        self.dead_letters = Counter(
            "ecom_dead_letters",
            "Inputs routed to the dead-letter topic, by reason",
            ["topic", "reason"],
            registry=r,
        )
        self.duplicates_skipped = Counter(
            "ecom_duplicates_skipped",
            "Redelivered inputs skipped (already applied)",
            ["topic"],
            registry=r,
        )
        self.offset_jumps = Counter(
            "ecom_offset_jumps",
            "Input offsets not following the previous one (rewind: redelivery; gap: a "
            "record skipped until earlier ones are read again; reread: seeks back for "
            "them; lost: offsets that could not be read back; recovering: a record skipped "
            "while tables recover, read again once they are ready)",
            ["topic", "kind"],
            registry=r,
        )
        self.repartitioned = Counter(
            "ecom_repartitioned", "Inputs re-keyed by user_id and re-sent", ["topic"], registry=r
        )
        self.processing_latency = Histogram(
            "ecom_processing_latency_seconds",
            "Wall time from receipt to outputs sent",
            ["topic"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.event_time_lag = Histogram(
            "ecom_event_time_lag_seconds",
            "Wall clock minus event time at processing",
            ["topic"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "ecom_consumer_lag",
            "Records behind the log end (broker log-end offset minus the next offset to "
            "process), per owned input partition, refreshed by a timer",
            ["topic", "partition"],
            registry=r,
        )
        self.unreadable_states = Counter(
            "ecom_unreadable_states",
            "Stored user states that did not decode (that user started afresh)",
            registry=r,
        )
        self.commits = Counter("ecom_commits", "Offset commits completed", registry=r)
        self.rebalances = Counter("ecom_rebalances", "Partition assignments received", registry=r)
        self.agent_crashes = Counter(
            "ecom_agent_crashes", "Times the processing agent ended with an error", registry=r
        )
        self.live = Gauge("ecom_live", "1 while /healthz answers 200", registry=r)
        self.ready = Gauge("ecom_ready", "1 while /readyz answers 200", registry=r)
        self.group_generation = Gauge(
            "ecom_group_generation",
            "The consumer group generation of this worker's latest assignment",
            registry=r,
        )
        self.table_size = Gauge("ecom_table_size", "Keys held in a table", ["table"], registry=r)
        self.active_profiles = Gauge(
            "ecom_active_profiles", "User profiles held by this worker", registry=r
        )
        self.model_logloss = Gauge(
            "ecom_model_logloss", "Progressive-validation log-loss", ["model"], registry=r
        )
        self.model_auc = Gauge(
            "ecom_model_auc", "Progressive-validation ROC AUC", ["model"], registry=r
        )
        self.model_calibration = Gauge(
            "ecom_model_calibration",
            "Mean predicted / observed rate (1 is calibrated)",
            ["model"],
            registry=r,
        )
        self.model_constant_logloss = Gauge(
            "ecom_model_constant_logloss",
            "Progressive log-loss of the running base-rate constant on the same labels",
            ["model"],
            registry=r,
        )
        self.model_recent_logloss = Gauge(
            "ecom_model_recent_logloss",
            "Log-loss over the recent window (the health gate's), by predictor",
            ["model", "predictor"],
            registry=r,
        )
        self.model_gated = Gauge(
            "ecom_model_gated",
            "1 while the health gate keeps the model out of bids (not better than the "
            "running base rate, or miscalibrated, over the recent window)",
            ["model"],
            registry=r,
        )
        self.model_examples = Gauge(
            "ecom_model_examples", "Labelled examples learned so far", ["model"], registry=r
        )
        self.revenue_mae = Gauge(
            "ecom_model_revenue_mae", "Mean absolute error of the revenue model", registry=r
        )
        self.bid_multiplier = Histogram(
            "ecom_bid_multiplier",
            "Emitted per-user bid multipliers",
            buckets=MULTIPLIER_BUCKETS,
            registry=r,
        )
        self.pacing_factor = Gauge(
            "ecom_pacing_factor",
            "Current pacing factor per campaign (capped labels)",
            ["campaign"],
            registry=r,
        )
        self.campaign_spend = Gauge(
            "ecom_campaign_spend_ratio",
            "Today's spend / planned target (even in traffic time) per campaign",
            ["campaign"],
            registry=r,
        )
        self.recommendations = Counter(
            "ecom_recommendations_emitted",
            "Recommendation lists emitted, by strategy",
            ["strategy"],
            registry=r,
        )
        self.recommendation_coverage = Gauge(
            "ecom_recommendation_coverage",
            "Distinct items recommended / distinct items seen (catalog coverage)",
            registry=r,
        )
        self.snapshots = Counter("ecom_model_snapshots", "Model snapshots written", registry=r)
        self.snapshot_seconds = Histogram(
            "ecom_model_snapshot_seconds",
            "Time a model snapshot blocked its worker (encode and enqueue)",
            buckets=SNAPSHOT_BUCKETS,
            registry=r,
        )
        self.snapshot_age = Gauge(
            "ecom_model_snapshot_age_seconds",
            "Age, when restored, of the snapshot a partition's models were restored from "
            "(NaN: started cold), per owned partition",
            ["partition"],
            registry=r,
        )
        self.snapshot_restore_errors = Counter(
            "ecom_model_snapshot_restore_errors",
            "Restores that started cold because the snapshots could not be read or used",
            registry=r,
        )
        self.worker = Info("ecom_worker", "Worker build and model version", registry=r)
        self._campaigns: dict[str, str] = {}

    def campaign_label(self, campaign_id: str) -> str:
        """The campaign's own label for the first CAMPAIGN_LABEL_CAP campaigns, `other`
        for later ones; only the capped ones are remembered, so neither the series nor
        this map grows with the number of campaigns.

        >>> m = Metrics()
        >>> [m.campaign_label(f"c{i}") for i in range(CAMPAIGN_LABEL_CAP + 2)][-3:]
        ['c19', 'other', 'other']
        >>> len(m._campaigns) == CAMPAIGN_LABEL_CAP
        True
        """
        label = self._campaigns.get(campaign_id)
        if label is None:
            if len(self._campaigns) >= CAMPAIGN_LABEL_CAP:
                return "other"
            label = self._campaigns[campaign_id] = campaign_id
        return label

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
