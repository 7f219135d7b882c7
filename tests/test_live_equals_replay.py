"""One input through the worker on the broker and through the replay: every output
record equal byte for byte (ids included), on each output topic.

Both run the same pipeline step (`online_models/pipeline.py`) in the same order: the
worker merges a partition's three input topics in event time (`online_models/merge.py`)
as the replay merges its files. One partition, so the order of events across
partitions (which the shared knowledge sees in read order live; issue 19) plays no
part. The replay runs with `closed_loop=False`: as the worker, it is charged each
impression's logged cost instead of simulating its own auctions.

Dead letters are compared by reason and error: live they name the Kafka record
(topic, partition, offset) and hold its bytes, in the replay the file and line they
came from, whose bytes also carry the `topic` field."""

from __future__ import annotations

import gzip
from collections import Counter

import orjson
import pytest
from kafka_harness import WorkerProcess, produce, read_all
from live_support import get_json, poll, setup_topics, stream

from backtest.jsonl import write_events
from backtest.replay import ReplayOptions, replay
from backtest.synthetic import campaigns
from online_models.outputs import BidAdjustment, Recommendation

pytestmark = pytest.mark.integration

# Lines the decoder refuses (valid JSON, so `produce` can send them): both paths must
# dead-letter them for the same reasons.
BAD = [
    ("clickstream", {"event_id": "bad-1", "ts": 1, "user_id": "u-bad", "type": "teleport"}),
    ("orders", {"event_id": "bad-2", "ts": 1, "user_id": "u-bad", "order_id": "o",
                "status": "placed", "items": [{"item_id": "i", "price": -5, "quantity": 1}]}),
]  # fmt: skip


def test_live_worker_and_replay_write_the_same_bytes(broker, fast_worker_env, tmp_path):
    # Every empty topic is waited for (not only those behind), and long enough for a
    # shared, loaded machine (at 200 ms, 1 run in 4 let an order overtake clicks that a
    # full producer buffer held back): the replay's order exactly.
    env = {**fast_worker_env, "ECOM_PARTITIONS": "1", "ECOM_INPUT_SKIP_CAUGHT_UP": "0",
           "ECOM_INPUT_IDLE_MS": "5000"}  # fmt: skip
    settings = setup_topics(env)
    base = f"http://127.0.0.1:{env['ECOM_WEB_PORT']}"
    events = stream(n_users=60, duration_s=2 * 3600, seed=23)
    names = {logical: topic for topic, logical in settings.input_topics().items()}
    camp_file, event_file = tmp_path / "campaigns.jsonl", tmp_path / "events.jsonl"
    write_events(camp_file, [{"topic": "campaigns", **c} for c in campaigns(3)])
    # The bad lines first, at the time of the first event: where the replay puts them.
    first_ts = int(events[0][1]["ts"])
    bad = [(t, {**e, "ts": first_ts}) for t, e in BAD]
    write_events(event_file, [{"topic": t, **e} for t, e in bad + events])

    opts = ReplayOptions(partitions=1, closed_loop=False)
    replay([camp_file, event_file], tmp_path / "out", opts)
    with gzip.open(tmp_path / "out" / "outputs.jsonl.gz") as f:
        offline = [line.rstrip(b"\n") for line in f]
    with gzip.open(tmp_path / "out" / "dead-letters.jsonl.gz") as f:
        offline_dead = [orjson.loads(line) for line in f]

    camp_records = [
        (settings.topic_campaigns, c["campaign_id"].encode(), orjson.dumps(c), None)
        for c in campaigns(3)
    ]
    # In event-time order, as `ecom-stream produce` sends a history; keyed by user.
    inputs = [
        (names[t], str(e["user_id"]).encode(), orjson.dumps(e), int(e["ts"]))
        for t, e in bad + events
    ]
    with WorkerProcess(env, log_path=tmp_path / "worker.log") as worker:
        worker.wait_http(f"{base}/readyz", timeout_s=60)
        produce(broker.bootstrap, camp_records)
        loaded = b'ecom_table_size{table="campaigns"} 3.0'
        poll(lambda: (loaded in worker.wait_http(f"{base}/metrics"), "campaigns"), 30)
        for start in range(0, len(inputs), 500):  # a history arriving, not one burst
            produce(broker.bootstrap, inputs[start : start + 500])

        def processed() -> int:
            models = get_json(f"{base}/models") or {"partitions": {}}
            return sum(p["events"] for p in models["partitions"].values())

        want = len(events)
        poll(lambda: (processed() >= want, f"{processed()} of {want}"), 180)

    by_topic = {
        Recommendation.TOPIC: settings.topic_recommendations,
        BidAdjustment.TOPIC: settings.topic_bid_adjustments,
    }
    for logical, topic in by_topic.items():
        expected = [v for v in offline if orjson.loads(v).get("items") is not None] if (
            logical == Recommendation.TOPIC
        ) else [v for v in offline if orjson.loads(v).get("items") is None]  # fmt: skip
        live = read_all(broker.bootstrap, topic)
        assert len(expected) > 50, logical
        got = [m.value for m in live]
        (tmp_path / f"live-{logical}.jsonl").write_bytes(b"\n".join(got))  # for a diff
        (tmp_path / f"replay-{logical}.jsonl").write_bytes(b"\n".join(expected))
        # The same records in the same order (one partition: one output order).
        first_diff = next(
            (i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b), None
        )
        assert first_diff is None and len(got) == len(expected), (
            logical,
            len(expected),
            len(got),
            first_diff,
            first_diff is not None and (expected[first_diff], got[first_diff]),
        )
        for m in live:  # keyed as the bidding system reads them: by user (or campaign)
            o = orjson.loads(m.value)
            assert m.key == (o.get("user_id") or o["campaign_id"]).encode()

    live_dead = [
        orjson.loads(m.value) for m in read_all(broker.bootstrap, settings.topic_dead_letter)
    ]
    assert Counter((d["reason"], d["error"]) for d in live_dead) == Counter(
        (d["reason"], d["error"]) for d in offline_dead
    )
    assert len(live_dead) == len(BAD)
