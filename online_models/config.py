"""Hyperparameters of the domain, as one frozen object of constructor arguments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

DOMAIN_ENV_PREFIX = "ECOM_DOMAIN_"
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class EngineConfig:
    """Everything tunable in the domain; times in milliseconds of event time."""

    partitions: int = 4
    half_life_ms: int = 7 * DAY_MS  # decayed counts and category affinity
    session_gap_ms: int = 30 * MINUTE_MS
    profile_ttl_ms: int = 30 * DAY_MS
    max_categories: int = 24
    max_recent_items: int = 20
    max_purchased: int = 30
    max_user_campaigns: int = 8
    click_window_ms: int = 30 * MINUTE_MS
    conversion_window_ms: int = 24 * HOUR_MS
    allowed_lateness_ms: int = 5 * MINUTE_MS
    # An event further ahead of the partition's watermark is refused (future_timestamp);
    # without a clock, this many refusals in a row are taken as a jump in history.
    max_future_skew_ms: int = DAY_MS
    future_quorum: int = 50
    max_pending_impressions: int = 200_000
    max_pending_clicks_per_user: int = 5
    hash_bits: int = 18
    # Click / conversion models (online_models/models.py, learner.py): AdaGrad step
    # size and L2 of the weights; the offset is the running base rate, whose prior
    # (2 pseudo-labels) only matters for the first few labels.
    learning_rate: float = 0.05
    l2: float = 1e-4
    click_prior: float = 0.03  # starting click-through rate of a new model
    conversion_prior: float = 0.1  # starting conversion rate after a click
    base_rate_horizon: int = 200_000  # labels over which the base rate follows drift
    # 1: learn each click at once as a fake negative, importance-weighted (delayed
    # conversions); 0: wait out the conversion window for negatives.
    fake_negatives: int = 1
    # Health gate: over the last ~gate_window labels a model must beat the running
    # base-rate constant and be calibrated within [low, high], else bids ignore it.
    model_gate: int = 1  # 0: bids always use the models (comparisons, tests)
    gate_window: int = 5000
    gate_min_positives: float = 30.0
    gate_calibration_low: float = 0.8
    gate_calibration_high: float = 1.25
    segments: int = 4
    top_k: int = 10
    rec_interval_ms: int = 30_000
    covis_half_life_ms: int = 3 * DAY_MS
    trending_half_life_ms: int = 6 * HOUR_MS
    covis_neighbors: int = 40
    covis_lookback: int = 5
    # Recommendations (online_models/blend.py; docs/architecture.md "Recommendations").
    # 1: items already in the session may be recommended again (a "next click" widget,
    # the replay's protocol); 0: never (a "you may also like" widget); 2: all but the
    # item in view (a "related items" box on a product page; the pre-issue-10 rule).
    rec_allow_seen: int = 1
    # Blend weights, each part scaled to about a probability of the next item.
    rec_sr_weight: float = 1.0  # sequential rules of the latest item
    rec_sr_prev_weight: float = 0.2  # ... and of the item before it
    rec_knn_weight: float = 0.4  # session neighbours
    rec_repeat_weight: float = 2.0  # revisit rates of the session's own items
    rec_covis_weight: float = 0.1  # symmetric co-visitation (the pre-issue-10 recommender)
    rec_covis_lookback: int = 2  # latest session items whose co-visits are read
    # Two hops of co-visitation from the latest item: what its strongest co-visits are
    # co-visited with (reaches items never seen with the latest item itself).
    rec_covis2_weight: float = 0.05
    rec_covis2_hops: int = 5  # the latest item's strongest co-visits whose own are read
    rec_affinity_weight: float = 0.01  # category affinity: fallback for cold sessions
    rec_trending_weight: float = 0.001  # trending: the last fallback
    # Memory bounds of the sequence-aware knowledge (each named in docs/architecture.md).
    sr_max_next: int = 40  # followers kept per item
    sr_lookback: int = 3  # rules up to this many steps apart
    sr_prior: float = 1.0  # pseudo-weight added to a row's total: rare items' rules weigh less
    covis_top: int = 20  # strongest co-visits kept sorted per item (the second hop reads them)
    max_sessions: int = 100_000  # sessions kept in the session index
    max_session_items: int = 20  # distinct items kept per session (indexed and current)
    knn_sessions_per_item: int = 20  # most recent sessions kept per item
    knn_neighbors: int = 20  # neighbours that vote
    knn_lookback: int = 3  # latest session items used to look neighbours up
    knn_position_decay: float = 2.0
    knn_half_life_ms: int = 24 * HOUR_MS
    knn_match_decay: float = 2.0
    knn_vote_window: int = 3  # a neighbour votes for its items this close to the shared one
    max_items: int = 200_000
    exclude_purchased_ms: int = 7 * DAY_MS
    bid_threshold: float = 0.1
    campaign_active_ms: int = HOUR_MS
    bid_ttl_s: int = 900
    # Pacing: PI controller on ln(required / actual spend rate), see online_models/bidding.py.
    # Gains at full; divided by 1 + the days in a row before today that ended on budget,
    # down to pacing_settle x (a flat bid buys the most for its spend; bidding.py).
    pacing_gain: float = 0.2
    pacing_integral: float = 0.1  # per hour of event time
    pacing_window_ms: int = 2 * HOUR_MS  # time constant of the actual spend rate
    pacing_min: float = 0.1  # > 0: a campaign with budget left keeps bidding
    pacing_max: float = 4.0
    pacing_traffic_time: int = 1  # 1: plan in traffic time (hour-of-day profile); 0: clock
    pacing_traffic_decay: float = 0.7  # weight of each earlier day in that profile
    pacing_settle: float = 0.25  # the floor of that division
    pacing_settle_within: float = 0.03  # a day on budget: spend within this of it (under
    # the pacing goal of 5 %)
    # The revenue model's prediction is used once it has learned this many orders
    # (click and conversion models: the health gate below).
    value_min_positives: int = 30
    # Weight of each new value in a campaign's running average value, which multipliers
    # are relative to: small, so that the average is a level, not a moving target (two
    # equal impressions an hour apart should get the same bid).
    value_average_alpha: float = 0.002
    pacing_threshold: float = 0.05
    snapshot_every_events: int = 2000
    # How late (event time) knowledge updates become visible to the partitions: 0 in
    # one process; the replay sets it to model updates travelling between workers.
    knowledge_delay_ms: int = 0
    # Campaigns (issue 17): every structure keyed by a campaign id (pacer, value and
    # cost averages, announced pacing) holds at most max_campaigns known from the
    # campaigns topic plus max_unknown_campaigns first seen in impressions (they get
    # the defaults); impressions of further unknown ones are dead-lettered as
    # `unknown_campaign`. An unknown campaign without impressions for
    # unknown_campaign_idle_ms of event time is forgotten, freeing its place.
    max_campaigns: int = 10_000
    max_unknown_campaigns: int = 64
    unknown_campaign_idle_ms: int = 2 * DAY_MS

    def with_overrides(self, overrides: dict[str, Any]) -> EngineConfig:
        """Override fields by name, coercing to each field's type (used by settings)."""
        kinds = {f.name: f.type for f in fields(self)}
        clean: dict[str, Any] = {}
        for key, value in overrides.items():
            if key not in kinds:
                raise KeyError(f"unknown domain setting {key!r}")
            clean[key] = int(value) if kinds[key] in ("int", int) else float(value)
        return replace(self, **clean)


def domain_overrides(env: Mapping[str, str]) -> dict[str, float]:
    """`ECOM_DOMAIN_<FIELD>` variables as EngineConfig overrides (field name -> value).

    The one reader of these variables, for the worker (`streams.settings`) and the
    replay alike, so both run the same hyperparameters.

    >>> domain_overrides({"ECOM_DOMAIN_TOP_K": "20", "ECOM_PARTITIONS": "8"})
    {'top_k': 20.0}
    >>> EngineConfig().with_overrides(domain_overrides({"ECOM_DOMAIN_TOP_K": "20"})).top_k
    20
    """
    return {
        k[len(DOMAIN_ENV_PREFIX) :].lower(): float(v)
        for k, v in env.items()
        if k.startswith(DOMAIN_ENV_PREFIX)
    }
