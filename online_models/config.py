"""Hyperparameters of the domain, as one frozen object of constructor arguments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from online_models.bounds import (
    ConfigError,
    above,
    at_least,
    flag,
    kind_of,
    parse,
    problems,
    within,
)

DOMAIN_ENV_PREFIX = "ECOM_DOMAIN_"
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class EngineConfig:
    """Everything tunable in the domain; times in milliseconds of event time."""

    partitions: int = at_least(4, 1)
    half_life_ms: int = above(7 * DAY_MS, 0)  # decayed counts and category affinity
    session_gap_ms: int = above(30 * MINUTE_MS, 0)
    profile_ttl_ms: int = above(30 * DAY_MS, 0)
    max_categories: int = at_least(24, 1)
    max_recent_items: int = at_least(20, 1)
    max_purchased: int = at_least(30, 1)
    max_user_campaigns: int = at_least(8, 1)
    click_window_ms: int = above(30 * MINUTE_MS, 0)
    conversion_window_ms: int = above(24 * HOUR_MS, 0)
    allowed_lateness_ms: int = at_least(5 * MINUTE_MS, 0)
    # An event further ahead of the partition's watermark is refused (future_timestamp);
    # without a clock, this many refusals in a row are taken as a jump in history.
    max_future_skew_ms: int = above(DAY_MS, 0)
    future_quorum: int = at_least(50, 1)
    max_pending_impressions: int = at_least(200_000, 1)
    max_pending_clicks_per_user: int = at_least(5, 1)
    hash_bits: int = within(18, 1, 26)
    # Click / conversion models (online_models/models.py, learner.py): AdaGrad step
    # size and L2 of the weights; the offset is the running base rate, whose prior
    # (2 pseudo-labels) only matters for the first few labels.
    learning_rate: float = above(0.05, 0)
    l2: float = at_least(1e-4, 0)
    # starting click-through rate of a new model
    click_prior: float = within(0.03, 0, 1, low_open=True, high_open=True)
    # starting conversion rate after a click
    conversion_prior: float = within(0.1, 0, 1, low_open=True, high_open=True)
    base_rate_horizon: int = at_least(200_000, 1)  # labels over which the base rate follows drift
    # 1: learn each click at once as a fake negative, importance-weighted (delayed
    # conversions); 0: wait out the conversion window for negatives.
    fake_negatives: int = flag(1)
    # Health gate: over the last ~gate_window labels a model must beat the running
    # base-rate constant and be calibrated within [low, high], else bids ignore it.
    model_gate: int = flag(1)  # 0: bids always use the models (comparisons, tests)
    gate_window: int = at_least(5000, 1)
    gate_min_positives: float = at_least(30.0, 0)
    gate_calibration_low: float = above(0.8, 0)
    gate_calibration_high: float = above(1.25, 0)
    segments: int = at_least(4, 1)
    # k-anonymity: a segment label is published or used as a bid feature only while at
    # least this many users carry it (online_models/segment_counts.py; issue 21).
    segment_min_users: int = at_least(50, 1)
    top_k: int = at_least(10, 1)
    rec_interval_ms: int = at_least(30_000, 0)
    covis_half_life_ms: int = above(3 * DAY_MS, 0)
    trending_half_life_ms: int = above(6 * HOUR_MS, 0)
    covis_neighbors: int = at_least(40, 1)
    covis_lookback: int = at_least(5, 1)
    # Recommendations (online_models/blend.py; docs/architecture.md "Recommendations").
    # 1: items already in the session may be recommended again (a "next click" widget,
    # the replay's protocol); 0: never (a "you may also like" widget); 2: all but the
    # item in view (a "related items" box on a product page; the pre-issue-10 rule).
    rec_allow_seen: int = within(1, 0, 2)
    # Blend weights, each part scaled to about a probability of the next item.
    rec_sr_weight: float = at_least(1.0, 0)  # sequential rules of the latest item
    rec_sr_prev_weight: float = at_least(0.2, 0)  # ... and of the item before it
    rec_knn_weight: float = at_least(0.4, 0)  # session neighbours
    rec_repeat_weight: float = at_least(2.0, 0)  # revisit rates of the session's own items
    # symmetric co-visitation (the pre-issue-10 recommender)
    rec_covis_weight: float = at_least(0.1, 0)
    rec_covis_lookback: int = at_least(2, 1)  # latest session items whose co-visits are read
    # Two hops of co-visitation from the latest item: what its strongest co-visits are
    # co-visited with (reaches items never seen with the latest item itself).
    rec_covis2_weight: float = at_least(0.05, 0)
    # the latest item's strongest co-visits whose own are read
    rec_covis2_hops: int = at_least(5, 0)
    rec_affinity_weight: float = at_least(0.01, 0)  # category affinity: fallback for cold sessions
    rec_trending_weight: float = at_least(0.001, 0)  # trending: the last fallback
    # Memory bounds of the sequence-aware knowledge (each named in docs/architecture.md).
    sr_max_next: int = at_least(40, 1)  # followers kept per item
    sr_lookback: int = at_least(3, 1)  # rules up to this many steps apart
    # pseudo-weight added to a row's total: rare items' rules weigh less
    sr_prior: float = at_least(1.0, 0)
    # strongest co-visits kept sorted per item (the second hop reads them)
    covis_top: int = at_least(20, 1)
    max_sessions: int = at_least(100_000, 1)  # sessions kept in the session index
    # distinct items kept per session (indexed and current)
    max_session_items: int = at_least(20, 1)
    knn_sessions_per_item: int = at_least(20, 1)  # most recent sessions kept per item
    knn_neighbors: int = at_least(20, 1)  # neighbours that vote
    knn_lookback: int = at_least(3, 1)  # latest session items used to look neighbours up
    knn_position_decay: float = above(2.0, 0)
    knn_half_life_ms: int = above(24 * HOUR_MS, 0)
    # sessions not updated for this long leave the index (their vote is 2**-14 of a
    # fresh one's at the default half-life)
    knn_max_age_ms: int = above(14 * DAY_MS, 0)
    knn_match_decay: float = above(2.0, 0)
    # a neighbour votes for its items this close to the shared one
    knn_vote_window: int = at_least(3, 1)
    max_items: int = at_least(200_000, 1)
    exclude_purchased_ms: int = at_least(7 * DAY_MS, 0)
    bid_threshold: float = at_least(0.1, 0)
    campaign_active_ms: int = above(HOUR_MS, 0)
    bid_ttl_s: int = above(900, 0)
    # Pacing: PI controller on ln(required / actual spend rate), see online_models/bidding.py.
    # Gains at full; divided by 1 + the days in a row before today that ended on budget,
    # down to pacing_settle x (a flat bid buys the most for its spend; bidding.py).
    pacing_gain: float = at_least(0.2, 0)
    pacing_integral: float = at_least(0.1, 0)  # per hour of event time
    pacing_window_ms: int = above(2 * HOUR_MS, 0)  # time constant of the actual spend rate
    pacing_min: float = above(0.1, 0)  # > 0: a campaign with budget left keeps bidding
    pacing_max: float = above(4.0, 0)
    pacing_traffic_time: int = flag(1)  # 1: plan in traffic time (hour-of-day profile); 0: clock
    pacing_traffic_decay: float = within(0.7, 0, 1)  # weight of each earlier day in that profile
    pacing_settle: float = within(0.25, 0, 1, low_open=True)  # the floor of that division
    pacing_settle_within: float = above(0.03, 0)  # a day on budget: spend within this of it (under
    # the pacing goal of 5 %)
    # The revenue model's prediction is used once it has learned this many orders
    # (click and conversion models: the health gate below).
    value_min_positives: int = at_least(30, 0)
    # Weight of each new value in a campaign's running average value, which multipliers
    # are relative to: small, so that the average is a level, not a moving target (two
    # equal impressions an hour apart should get the same bid).
    value_average_alpha: float = within(0.002, 0, 1, low_open=True)
    pacing_threshold: float = at_least(0.05, 0)
    snapshot_every_events: int = at_least(2000, 1)
    # How late (event time) knowledge updates become visible to the partitions: 0 in
    # one process; the replay sets it to model updates travelling between workers.
    knowledge_delay_ms: int = at_least(0, 0)
    # Campaigns (issue 17): every structure keyed by a campaign id (pacer, value and
    # cost averages, announced pacing) holds at most max_campaigns known from the
    # campaigns topic plus max_unknown_campaigns first seen in impressions (they get
    # the defaults); impressions of further unknown ones are dead-lettered as
    # `unknown_campaign`. An unknown campaign without impressions for
    # unknown_campaign_idle_ms of event time is forgotten, freeing its place.
    max_campaigns: int = at_least(10_000, 1)
    max_unknown_campaigns: int = at_least(64, 0)
    unknown_campaign_idle_ms: int = at_least(2 * DAY_MS, 1)

    def __post_init__(self) -> None:
        # Every field is checked against its declared range, so a bad value fails here,
        # once, instead of as an IndexError on every event (top_k=-1) or silence (0).
        found = problems(self)
        if self.gate_calibration_low > self.gate_calibration_high:
            found.append("gate_calibration_low must not exceed gate_calibration_high")
        if self.pacing_min > self.pacing_max:
            found.append("pacing_min must not exceed pacing_max")
        if found:
            raise ConfigError(found)

    @classmethod
    def for_run(cls, partitions: int, overrides: Mapping[str, Any], **options: Any) -> EngineConfig:
        """The one config builder of the worker and the replay: the defaults, then the
        `ECOM_DOMAIN_*` overrides, then the partition count and the driver's own
        `options` (the replay's top_k and knowledge delay); None options are left out.

        >>> EngineConfig.for_run(4, {"top_k": "12"}, knowledge_delay_ms=None).top_k
        12
        """
        chosen = {k: v for k, v in options.items() if v is not None}
        return replace(cls().with_overrides(overrides), partitions=partitions, **chosen)

    def with_overrides(self, overrides: Mapping[str, Any]) -> EngineConfig:
        """Override fields by name, coercing to each field's type (used by settings);
        KeyError for an unknown name, ConfigError for values out of range."""
        kinds = {f.name: kind_of(f) for f in fields(self)}
        clean: dict[str, Any] = {}
        for key, value in overrides.items():
            if key not in kinds:
                raise KeyError(f"unknown domain setting {key!r}")
            clean[key] = kinds[key](value)
        return replace(self, **clean)


def domain_overrides(env: Mapping[str, str]) -> dict[str, int | float]:
    """`ECOM_DOMAIN_<FIELD>` variables as EngineConfig overrides (field name -> value).

    The one reader of these variables, for the worker (`streams.settings`) and the
    replay alike, so both run the same hyperparameters. Raises ConfigError listing
    every unknown name, unreadable value and value out of range, one per line.

    >>> domain_overrides({"ECOM_DOMAIN_TOP_K": "20", "ECOM_PARTITIONS": "8"})
    {'top_k': 20}
    >>> EngineConfig().with_overrides(domain_overrides({"ECOM_DOMAIN_TOP_K": "20"})).top_k
    20
    >>> try:
    ...     domain_overrides({"ECOM_DOMAIN_TOP_K": "-1", "ECOM_DOMAIN_NO_SUCH": "1"})
    ... except ConfigError as exc:
    ...     print(exc)
    ECOM_DOMAIN_NO_SUCH: unknown domain setting (see EngineConfig in online_models/config.py)
    ECOM_DOMAIN_TOP_K='-1': must be an integer >= 1
    """
    known = {f.name for f in fields(EngineConfig)}
    values: dict[str, int | float] = {}
    found: list[str] = []
    for key in sorted(k for k in env if k.startswith(DOMAIN_ENV_PREFIX)):
        name = key[len(DOMAIN_ENV_PREFIX) :].lower()
        if name == "partitions":  # one number for topics and engines, set elsewhere
            found.append(f"{key}: not a domain setting; set ECOM_PARTITIONS (replay: --partitions)")
            continue
        if name not in known:
            found.append(
                f"{key}: unknown domain setting (see EngineConfig in online_models/config.py)"
            )
            continue
        try:
            values[name] = parse(EngineConfig, name, env[key])
        except ValueError as exc:
            found.append(f"{key}={env[key]!r}: {exc}")
    if not found:
        try:
            EngineConfig().with_overrides(values)
        except ConfigError as exc:  # cross-field rules, e.g. pacing_min <= pacing_max
            found += [f"ECOM_DOMAIN_*: {p}" for p in exc.problems]
    if found:
        raise ConfigError(found)
    return values
