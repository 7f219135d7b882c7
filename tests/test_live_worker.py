"""The real worker against the real (embedded) broker, read back with an independent
client (librdkafka via confluent-kafka). These tests fail, never skip, when the
broker cannot start."""

from __future__ import annotations

import base64
import collections
import time

import msgspec
import orjson
import pytest
from kafka_harness import WorkerProcess, produce, read_all, wait_for
from live_support import (
    campaign_records,
    get_json,
    poll,
    raw_records,
    records,
    setup_topics,
    stream,
)
from prometheus_client.parser import text_string_to_metric_families

from backtest.synthetic import malformed_inputs
from online_models.outputs import BidAdjustment, DeadLetter, Recommendation

pytestmark = pytest.mark.integration


def test_outputs_dead_letters_and_metrics(broker, fast_worker_env, tmp_path):
    """A realistic stream yields valid recommendations and bid adjustments; every
    malformed class lands in dead-letter with its original bytes, and the valid events
    produced after them are still processed; /metrics is valid Prometheus text."""
    env = fast_worker_env
    settings = setup_topics(env)
    base = f"http://127.0.0.1:{env['ECOM_WEB_PORT']}"
    events = stream(n_users=150, duration_s=3 * 3600, seed=11)
    bad = malformed_inputs()
    last_ts = max(int(e["ts"]) for _, e in events)
    marker = {
        "event_id": "after-bad-1",
        "ts": last_ts + 1000,
        "user_id": "after-bad-user",
        "type": "view",
        "item_id": "i1",
        "category": "shoes",
        "price": 10.0,
    }
    with WorkerProcess(env, log_path=tmp_path / "worker.log") as worker:
        worker.wait_http(f"{base}/readyz", timeout_s=60)
        produce(broker.bootstrap, campaign_records(settings))
        produce(broker.bootstrap, records(events, settings))
        produce(broker.bootstrap, raw_records([(t, raw) for t, raw, _ in bad], settings))
        produce(broker.bootstrap, records([("clickstream", marker)], settings))

        recs = wait_for(
            broker.bootstrap,
            settings.topic_recommendations,
            lambda rs: any(r.key == b"after-bad-user" for r in rs),
            timeout_s=90,
        )
        dead = wait_for(
            broker.bootstrap,
            settings.topic_dead_letter,
            lambda rs: len(rs) >= len(bad),
            timeout_s=30,
        )
        bids = read_all(broker.bootstrap, settings.topic_bid_adjustments)
        metrics_text = worker.wait_http(f"{base}/metrics").decode()

    # Outputs: typed schemas, keyed by user, unique deterministic ids.
    rec_objs = [msgspec.json.decode(r.value, type=Recommendation) for r in recs]
    assert all(r.key == o.user_id.encode() for r, o in zip(recs, rec_objs, strict=True))
    assert all(1 <= len(o.items) <= 10 for o in rec_objs)
    assert len({o.event_id for o in rec_objs}) == len(rec_objs)
    assert len(bids) > 0, "no bid adjustments"
    bid_objs = [msgspec.json.decode(b.value, type=BidAdjustment) for b in bids]
    per_user = [o for o in bid_objs if o.user_id is not None]
    assert per_user and all(0 <= o.multiplier <= 3.0 * 2.0 for o in per_user)
    assert all(o.p_click is not None and 0 < o.p_click < 1 for o in per_user)
    assert len({o.event_id for o in bid_objs}) == len(bid_objs)

    # Dead letters: each class, with the exact original bytes and its source position.
    letters = [msgspec.json.decode(d.value, type=DeadLetter) for d in dead]
    reasons = collections.Counter(d.reason for d in letters)
    assert set(reasons) == {reason for _, _, reason in bad}, reasons
    originals = {raw for _, raw, _ in bad}
    for d in letters:
        raw = d.payload.encode() if d.payload_encoding == "utf-8" else base64.b64decode(d.payload)
        assert raw in originals
        assert d.source_topic in settings.input_topics()
        assert d.source_offset >= 0
    assert all(dict(m.headers).get("reason") for m in dead)

    # Metrics: valid exposition, key series present, no user ids in labels.
    families = {f.name: f for f in text_string_to_metric_families(metrics_text)}
    for name in (
        "ecom_events_in",
        "ecom_events_out",
        "ecom_dead_letters",
        "ecom_processing_latency_seconds",
        "ecom_event_time_lag_seconds",
        "ecom_model_logloss",
        "ecom_active_profiles",
        "ecom_model_examples",
    ):
        assert name in families, name
    dl = {
        s.labels["reason"]
        for s in families["ecom_dead_letters"].samples
        if s.name.endswith("_total")
    }
    assert dl == set(reasons)
    users = {str(e["user_id"]) for _, e in events}
    label_values = {v for f in families.values() for s in f.samples for v in s.labels.values()}
    assert not users & label_values


def test_restart_restores_profiles_and_models(broker, fast_worker_env, tmp_path):
    """After a clean restart, profiles come back from the table changelog and model
    weights from the latest snapshot: the worker is not cold."""
    env = {**fast_worker_env, "ECOM_SNAPSHOT_EVERY_S": "1"}
    settings = setup_topics(env)
    base = f"http://127.0.0.1:{env['ECOM_WEB_PORT']}"
    events = stream(n_users=120, duration_s=3 * 3600, seed=21)
    sample_users = sorted({str(e["user_id"]) for _, e in events})[:25]
    produce(broker.bootstrap, campaign_records(settings))
    produce(broker.bootstrap, records(events, settings))

    def learned(models: dict) -> int:
        return models["knowledge"]["learned"]["click"]

    def events_seen() -> int:
        models = get_json(f"{base}/models") or {"partitions": {}}
        return sum(p["events"] for p in models["partitions"].values())

    with WorkerProcess(env, log_path=tmp_path / "w1.log") as worker:
        worker.wait_http(f"{base}/readyz", timeout_s=60)
        poll(lambda: (events_seen() >= len(events), f"{events_seen()} of {len(events)}"), 120)
        before_profiles = {u: get_json(f"{base}/profiles/{u}") for u in sample_users}
        before_models = get_json(f"{base}/models")
        assert learned(before_models) > 0, "no click labels were learned"
        time.sleep(2.5)  # one more snapshot tick after the last event
        before_models = get_json(f"{base}/models")

    with WorkerProcess(env, log_path=tmp_path / "w2.log") as worker:
        worker.wait_http(f"{base}/readyz", timeout_s=60)
        poll(lambda: (len((get_json(f"{base}/models") or {"partitions": {}})["partitions"]) == 2,
                      "engines not restored"), 60)  # fmt: skip
        after_models = get_json(f"{base}/models")
        after_profiles = {u: get_json(f"{base}/profiles/{u}") for u in sample_users}

    assert after_profiles == before_profiles
    assert learned(after_models) == learned(before_models) > 0
    # The restarted worker's knowledge is the newest one its partitions' snapshots carry.
    before_k, after_k = before_models["knowledge"], after_models["knowledge"]
    assert after_k["click_weights"] == before_k["click_weights"]
    assert after_k["scores"] == before_k["scores"]
    assert orjson.dumps(after_models) == orjson.dumps(before_models)
