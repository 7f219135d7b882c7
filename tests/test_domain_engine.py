"""PartitionEngine and Runner: the one code path shared by live workers and replays.

What downstream systems rely on: redelivered inputs change nothing and emit nothing;
every output has a deterministic id (so the bidder can drop duplicates) and a valid
schema; bid multipliers stay inside the campaign's range times the pacing factor;
idle profiles expire in event time; a snapshot restores the same engine; users are
placed on partitions exactly as Kafka's producer places their records; and the
models actually learn from the stream.
"""

from __future__ import annotations

import functools
import math
import os
import random
import subprocess
import sys
import textwrap
from typing import Any

import msgspec
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as kafka_murmur2

from backtest.synthetic import campaigns, generate
from online_models.bidding import DAY_MS
from online_models.blend import STRATEGIES
from online_models.config import HOUR_MS, MINUTE_MS, EngineConfig
from online_models.decode import decode_dict
from online_models.engine import PartitionEngine
from online_models.evaluation import BinaryScore
from online_models.events import AdImpression, Campaign, ClickEvent
from online_models.outputs import BidAdjustment, Recommendation
from online_models.partitioning import murmur2, partition_for
from online_models.runner import Runner

NOON = (1_700_000_000_000 // DAY_MS) * DAY_MS + 12 * HOUR_MS
ENCODE = msgspec.json.encode


@functools.lru_cache(maxsize=4)
def stream(n_users: int, hours: float, seed: int) -> tuple[tuple[str, Any], ...]:
    """The synthetic stream, decoded once per module run (events are immutable here)."""
    return tuple(
        (topic, decode_dict(topic, ev))
        for topic, ev in generate(n_users=n_users, duration_s=int(hours * 3600), seed=seed)
    )


def runner(partitions: int = 4, **cfg: Any) -> Runner:
    r = Runner(EngineConfig(partitions=partitions, **cfg))
    for c in campaigns(3):
        r.set_campaign(msgspec.convert(c, Campaign))
    return r


def replay(r: Runner, events: Any) -> list[Any]:
    outputs: list[Any] = []
    for topic, ev in events:
        outputs.extend(r.feed(topic, ev).outputs)
    return outputs


@functools.lru_cache(maxsize=1)
def small_run() -> tuple[Runner, tuple[Any, ...]]:
    r = runner()
    return r, tuple(replay(r, stream(250, 2, 5)))


def view(user: str, ts: int, item: str = "i1", n: int = 0, type_: str = "view") -> ClickEvent:
    return ClickEvent(
        event_id=f"{user}-{n}-{ts}", ts=ts, user_id=user, type=type_, item_id=item, category="shoes"
    )


def impression(user: str, ts: int, cost: float, n: int = 0) -> AdImpression:
    return AdImpression(
        impression_id=f"im-{user}-{n}",
        ts=ts,
        user_id=user,
        campaign_id="c1",
        cost=cost,
        placement="top",
        context={"device": "ios"},
    )


# Outputs ----------------------------------------------------------------------------


def test_outputs_have_deterministic_ids_and_bytes() -> None:
    """The same input through two fresh runners gives the same outputs, byte for byte
    (msgspec.json.encode), so a reprocessed input yields the same event ids and the
    bidder deduplicates it. Ids are also unique within one run."""
    _, outputs = small_run()
    again = replay(runner(), stream(250, 2, 5))
    assert len(outputs) > 100
    assert [ENCODE(o) for o in again] == [ENCODE(o) for o in outputs]
    ids = [o.event_id for o in outputs]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_outputs_do_not_depend_on_python_hash_seed() -> None:
    """Two processes with different PYTHONHASHSEED produce identical output bytes: no
    set or hash order leaks into recommendations or bids (live workers on different
    machines and a later replay must agree)."""
    script = textwrap.dedent("""
        import hashlib, msgspec
        from backtest.synthetic import campaigns, generate
        from online_models.config import EngineConfig
        from online_models.decode import decode_dict
        from online_models.events import Campaign
        from online_models.runner import Runner
        r = Runner(EngineConfig(partitions=2))
        for c in campaigns(3):
            r.set_campaign(msgspec.convert(c, Campaign))
        h = hashlib.sha256()
        for topic, ev in generate(n_users=80, duration_s=3600, seed=3):
            for o in r.feed(topic, decode_dict(topic, ev)).outputs:
                h.update(msgspec.json.encode(o))
        print(h.hexdigest())
    """)
    digests = set()
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        digests.add(done.stdout.strip())
    assert len(digests) == 1


def test_output_schemas_round_trip() -> None:
    """Every output decodes back into its own schema type from its JSON bytes, so
    consumers using the published schema can read all of them."""
    _, outputs = small_run()
    kinds = {type(o) for o in outputs}
    assert kinds == {Recommendation, BidAdjustment}
    for o in outputs:
        assert msgspec.json.decode(ENCODE(o), type=type(o)) == o
        assert o.schema_version == (2 if isinstance(o, BidAdjustment) else 1)
        if isinstance(o, Recommendation):
            assert 0 < len(o.items) <= 10 and o.strategy in STRATEGIES
            assert len({i.item_id for i in o.items}) == len(o.items)


def test_bid_multipliers_within_bounds_and_pacing_updates_are_campaign_wide() -> None:
    """On a realistic stream every multiplier is within [0, max_multiplier * pacing_max];
    per-user bids are the campaign-clipped value times the pacing factor (clip first,
    then pace); campaign-wide pacing updates carry user_id None and no predictions."""
    r, outputs = small_run()
    cfg = r.cfg
    bids = [o for o in outputs if isinstance(o, BidAdjustment)]
    by_id = {c.campaign_id: c for c in r.campaigns.values()}
    users = [b for b in bids if b.user_id is not None]
    pacing = [b for b in bids if b.user_id is None]
    assert len(users) > 100 and len(pacing) > 10
    for b in bids:
        c = by_id[b.campaign_id]
        assert 0.0 <= b.multiplier <= c.max_multiplier * cfg.pacing_max
        assert 0.0 <= b.pacing_factor <= cfg.pacing_max
        assert (b.shard, b.shards) == (r.partition(b.user_id) if b.user_id else b.shard, 4)
    assert {b.reason for b in users} <= {"model_gated", "new", "value_moved"}
    for b in users:
        assert b.reason in {"new", "value_moved", "model_gated"}
        assert b.p_click is not None and 0 < b.p_click < 1
        if b.reason == "model_gated":  # no trusted value: pacing alone
            assert "click" in b.gated and b.top_features == []
            assert b.multiplier == round(b.pacing_factor, 6)
        elif b.pacing_factor > 0:
            clipped = b.multiplier / b.pacing_factor
            assert c_min(by_id, b) - 1e-5 <= clipped <= c_max(by_id, b) + 1e-5
        else:
            assert b.multiplier == 0.0
    for b in pacing:
        assert b.reason in {"pacing", "budget_exhausted"}
        assert b.multiplier == b.pacing_factor
        assert (b.p_click, b.p_conversion, b.expected_revenue, b.expected_roas) == (
            None,
            None,
            None,
            None,
        )
        assert (b.reason == "budget_exhausted") == (b.multiplier == 0.0)


def c_min(by_id: dict[str, Campaign], b: BidAdjustment) -> float:
    return by_id[b.campaign_id].min_multiplier


def c_max(by_id: dict[str, Campaign], b: BidAdjustment) -> float:
    return by_id[b.campaign_id].max_multiplier


# The health gate off: bids use the models from the first event (hand-computed tests).
TRUSTING = EngineConfig(partitions=1, model_gate=0, value_min_positives=0)


def test_value_is_neutral_until_the_click_model_is_trusted() -> None:
    """While the health gate keeps the untrained click model out (too few positives) the
    value part is 1.0 whatever the priors say: the multiplier is the pacing factor and
    the reason `model_gated`."""
    c = Campaign(campaign_id="c1", daily_budget=240.0, min_multiplier=0.5, max_multiplier=2.0)
    eng = PartitionEngine(EngineConfig(partitions=1), 0, {"c1": c})
    r = eng.process("ad-impressions", impression("u", NOON, 1.0), None)
    eng.values.means["c1"] = 1e-6  # would be worth 50x the average if the model were used
    r = eng.process("clickstream", view("u", NOON + 1000, type_="add_to_cart"), r.state)
    bids = [o for o in r.outputs if isinstance(o, BidAdjustment) and o.user_id]
    assert not bids  # still neutral: nothing moved
    assert eng.quote(r.state, impression("u", NOON + 2000, 1.0, n=1)) == 1.0
    first = eng.process("ad-impressions", impression("v", NOON + 3000, 1.0, n=3), None)
    (bid,) = [o for o in first.outputs if o.user_id == "v"]
    assert (bid.reason, bid.multiplier) == ("model_gated", bid.pacing_factor)


def test_bid_is_clipped_to_campaign_range_then_paced() -> None:
    """Hand-computed with the model trusted from the start: an untrained model predicts
    its priors, p_click 0.03 and p_conversion 0.1, and revenue 50: value
    0.03*0.1*50/4 = 0.0375. An event's own knowledge updates (its spend, its value) are
    visible from the next event on, so the first bid is neutral (its value is the
    campaign average, pacing 1.0, no known cost). The first impression of a day is
    taken as on plan (factor 1.0), and the expected ROAS is 0.15 at the average cost of
    1. A value 50x the average is clipped to max 2.0; 1e-6x the average to min 0.5; an
    exhausted budget gives a campaign-wide 0 and a user bid of 0."""
    c = Campaign(campaign_id="c1", daily_budget=240.0, min_multiplier=0.5, max_multiplier=2.0)
    eng = PartitionEngine(TRUSTING, 0, {"c1": c})
    r = eng.process("ad-impressions", impression("u", NOON, 1.0), None)
    (bid,) = r.outputs
    assert (bid.user_id, bid.reason, bid.multiplier, bid.expected_roas) == ("u", "new", 1.0, None)
    assert (bid.p_click, bid.p_conversion, bid.expected_revenue) == (0.03, 0.1, 50.0)
    assert eng.knowledge.pacing_factor("c1", NOON) == 1.0
    eng.values.means["c1"] = 1e-6  # this user is worth ~50x the average
    r = eng.process("clickstream", view("u", NOON + 1000, type_="add_to_cart"), r.state)
    (bid,) = r.outputs[-1:]
    assert (bid.reason, bid.multiplier, bid.pacing_factor) == ("value_moved", 2.0, 1.0)
    assert bid.expected_roas == 0.15
    eng.values.means["c1"] = 1e6  # ... and now worth almost nothing
    r = eng.process("clickstream", view("u", NOON + 2000, n=1, type_="add_to_cart"), r.state)
    assert r.outputs[-1].multiplier == 0.5
    r = eng.process("ad-impressions", impression("u", NOON + 3000, 240.0, n=1), r.state)
    r = eng.process("ad-impressions", impression("u", NOON + 4000, 1.0, n=2), r.state)
    pace, bid = r.outputs  # the spend above is visible from this event on
    assert (pace.user_id, pace.reason, pace.multiplier) == (None, "budget_exhausted", 0.0)
    assert (bid.user_id, bid.multiplier, bid.pacing_factor) == ("u", 0.0, 0.0)


def test_views_do_not_reprice_but_cart_adds_do() -> None:
    """Bids are re-priced on strong signals (cart, click, wishlist, ad click) and on
    impressions, not on plain views, which would dominate the pipeline's cost."""
    eng = PartitionEngine(TRUSTING, 0)
    r = eng.process("ad-impressions", impression("u", NOON, 1.0), None)
    eng.values.means["c1"] = 1e-6
    r = eng.process("clickstream", view("u", NOON + 1000), r.state)
    assert not any(isinstance(o, BidAdjustment) for o in r.outputs)
    r = eng.process("clickstream", view("u", NOON + 2000, type_="add_to_cart"), r.state)
    assert any(isinstance(o, BidAdjustment) and o.user_id == "u" for o in r.outputs)


# TTL -----------------------------------------------------------------------------------


def test_idle_profiles_expire_in_event_time() -> None:
    """A user idle for longer than profile_ttl_ms (measured against the watermark, i.e.
    event time minus lateness) is returned in Result.expired exactly once, and the
    Runner drops their state; a user inside the TTL is kept. No wall clock involved."""
    r = runner(partitions=1, profile_ttl_ms=HOUR_MS)
    lateness = r.cfg.allowed_lateness_ms
    assert r.feed("clickstream", view("old", NOON)).expired == []
    r.feed("clickstream", view("fresh", NOON + 30 * MINUTE_MS))
    # cutoff = (max ts - lateness) - ttl == NOON: "old" (last seen NOON) is still kept.
    assert r.feed("clickstream", view("x", NOON + HOUR_MS + lateness)).expired == []
    result = r.feed("clickstream", view("x", NOON + HOUR_MS + lateness + 1, n=1))
    assert result.expired == ["old"]
    assert r.active_users() == 2
    assert r.feed("clickstream", view("x", NOON + HOUR_MS + lateness + 2, n=2)).expired == []
    # Coming back starts a fresh profile.
    r.feed("clickstream", view("old", NOON + 2 * HOUR_MS, n=3))
    assert r.profile("old").totals == {"view": 1}
    assert r.profile("old").first_seen == NOON + 2 * HOUR_MS


# Partitioning ------------------------------------------------------------------------------


def _keys() -> list[bytes]:
    rng = random.Random(7)
    keys = [f"u{k}".encode() for k in range(600)]
    keys += [f"user-{rng.getrandbits(64):x}-ü".encode() for _ in range(300)]
    keys += [rng.randbytes(rng.randrange(0, 13)) for _ in range(100)]
    return keys


def test_partition_for_matches_kafka_default_partitioner() -> None:
    """For 1,000 keys (short, long, non-ASCII, raw bytes of every tail length) and
    several partition counts, partition_for equals aiokafka's DefaultPartitioner: a
    replay runs each user through the same partition engine as the live worker."""
    keys = _keys()
    assert len(keys) == 1000
    for n in (1, 2, 3, 4, 7, 12, 32):
        parts = list(range(n))
        for key in keys:
            assert partition_for(key, n) == DefaultPartitioner()(key, parts, parts), (key, n)
    for key in keys:
        assert murmur2(key) & 0xFFFFFFFF == kafka_murmur2(key)
        assert -(2**31) <= murmur2(key) < 2**31


def test_runner_places_users_like_kafka() -> None:
    """The Runner keeps each user's state in the engine Kafka's partitioner picks."""
    r = runner(partitions=4)
    users = [f"u{k}" for k in range(200)]
    for k, u in enumerate(users):
        r.feed("clickstream", view(u, NOON + k))
    parts = [0, 1, 2, 3]
    for u in users:
        p = DefaultPartitioner()(u.encode(), parts, parts)
        assert r.partition(u) == p
        assert u in r.states[p]
    assert sum(r.engines[p].events for p in parts) == 200
    assert all(r.engines[p].events > 20 for p in parts)  # spread over every partition


# Learning ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def learned() -> tuple[BinaryScore, float]:
    """Progressive-validation click score on the synthetic stream, and the log-loss of
    the constant predictor that knows the base rate in hindsight."""
    r = runner()
    replay(r, stream(800, 3, 5))
    score = r.knowledge.models.click_score  # one model, learned from every partition
    p = score.y_sum / score.n
    return score, -(p * math.log(p) + (1 - p) * math.log(1 - p))


def test_click_model_learns_from_labels() -> None:
    """The click model is trained on thousands of labels from the stream, with a
    calibration (mean prediction / observed rate) within a factor of 2."""
    score, _ = learned()
    assert score.n > 2000 and score.y_sum > 50
    assert 0.5 < score.calibration < 2.0


def test_click_model_ranks_better_than_chance() -> None:
    """Progressive AUC above 0.5: the model ranks clicks above non-clicks (issue 11: the
    interest features learn fast enough, and the weak history features slowly enough,
    on generate(800 users, 3 h, seed 5): AUC 0.535)."""
    score, _ = learned()
    assert score.auc > 0.5


def test_click_model_beats_constant_predictor() -> None:
    """A model worth deploying must predict clicks better than always predicting the
    base rate: progressive log-loss below the constant predictor's log-loss (here the
    hindsight base rate, stricter than the running one the health gate uses; issue 11:
    0.1428 against 0.1430, the running constant 0.1442)."""
    score, constant = learned()
    assert score.logloss < constant
