"""Parity: the same stream replayed offline and through the real broker and worker gives
the same outputs and the same model metrics, up to the documented ordering effect.

Live, one partition's three input topics are read concurrently, so their interleaving
can differ from the replay's event-time merge. The domain is built to be insensitive to
that for profiles, labels and recommendations (all asserted equal here). Bid multipliers
re-emitted on a >10 % move ("value_moved") depend on model state at the moment of
re-pricing and may differ; the first bid per user and campaign must match. Campaign-wide
pacing updates come from one pacer fed by both partitions' spend in the order the worker
read it, so a few of them can be triggered by a different impression than in the replay
(measured: 4 of 30 differ); their number and most of their ids must match. A
recommendation can differ in the rare case where one user's view and order fall in one
rate-limit interval and are read out of event-time order (bounded here at 1 %; see
docs/backtesting.md)."""

from __future__ import annotations

import asyncio
import gzip
import math
from pathlib import Path

import orjson
import pytest
from kafka_harness import WorkerProcess, read_all
from live_support import get_json, poll, setup_topics, stream

from backtest.jsonl import write_events
from backtest.replay import ReplayOptions, replay
from backtest.synthetic import campaigns
from ecom_cli.produce import produce
from streams.settings import Settings

pytestmark = pytest.mark.integration


def test_offline_replay_and_live_worker_agree(broker, fast_worker_env, tmp_path, monkeypatch):
    env = {**fast_worker_env, "ECOM_MAX_POLL_RECORDS": "20"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # `produce` reads the same settings as the worker
    settings = setup_topics(env)
    base = f"http://127.0.0.1:{env['ECOM_WEB_PORT']}"
    events = stream(n_users=80, duration_s=2 * 3600, seed=13)
    camp_file, event_file = tmp_path / "campaigns.jsonl", tmp_path / "events.jsonl"
    write_events(camp_file, [{"topic": "campaigns", **c} for c in campaigns(3)])
    write_events(event_file, [{"topic": t, **e} for t, e in events])

    report = replay([camp_file, event_file], tmp_path / "out", ReplayOptions(partitions=2))
    with gzip.open(tmp_path / "out" / "outputs.jsonl.gz") as f:
        offline = [orjson.loads(line) for line in f]

    with WorkerProcess(env, log_path=tmp_path / "worker.log") as worker:
        worker.wait_http(f"{base}/readyz", timeout_s=60)
        asyncio.run(produce(Settings.from_env(), [str(camp_file)], math.inf))
        loaded = b'ecom_table_size{table="campaigns"} 3.0'
        poll(lambda: (loaded in worker.wait_http(f"{base}/metrics"), "campaigns"), 30)
        # In event-time order, at a pace the worker keeps up with (~30 s for 2 h): a worker
        # far behind reads each topic in large batches, skewing topics past the lateness.
        asyncio.run(produce(Settings.from_env(), [str(event_file)], 250.0))

        def processed() -> int:
            models = get_json(f"{base}/models") or {"partitions": {}}
            return sum(p["events"] for p in models["partitions"].values())

        poll(lambda: (processed() >= len(events), f"{processed()} of {len(events)}"), 120)
        live_models = get_json(f"{base}/models")
    live = [orjson.loads(m.value) for topic in (settings.topic_recommendations,
            settings.topic_bid_adjustments) for m in read_all(broker.bootstrap, topic)]  # fmt: skip

    def ids(outputs: list[dict], keep) -> set[str]:
        return {o["event_id"] for o in outputs if keep(o)}

    def first_bids(outputs: list[dict]) -> set[str]:
        """The first adjustment of each (user, campaign) in the order it was produced (a
        user's records share a partition, read in offset order): always emitted,
        whatever its reason (`new`, or `model_gated` while the click model is gated)."""
        first: dict[tuple[str, str], dict] = {}
        for o in outputs:
            if "items" not in o and o["user_id"] is not None:
                first.setdefault((o["user_id"], o["campaign_id"]), o)
        return {o["event_id"] for o in first.values()}

    recs = lambda o: "items" in o  # noqa: E731
    pacing = lambda o: "items" not in o and o["user_id"] is None  # noqa: E731
    # Recommendations: equal but for the rare view and order of one user that fall in one
    # rate-limit interval and are read out of event-time order across topics.
    off_recs, live_recs = ids(offline, recs), ids(live, recs)
    bids = lambda o: "items" not in o  # noqa: E731
    off_bids, live_bids = ids(offline, bids), ids(live, bids)
    same_recs, same_bids = len(off_recs & live_recs), len(off_bids & live_bids)
    print(f"ids equal to the replay's: recommendations {same_recs} of {len(off_recs)}, "
          f"bid-adjustments {same_bids} of {len(off_bids)}")  # fmt: skip
    assert len(off_recs) > 500
    assert len(off_recs ^ live_recs) <= 0.01 * len(off_recs), off_recs ^ live_recs
    assert first_bids(offline) and first_bids(live) == first_bids(offline)
    # Pacing is campaign-wide: the shared pacer sums both partitions' spend, in the order
    # the worker read it. The factor follows the same spend, but which impression moves
    # it past the announcement threshold can differ from the replay's event-time order.
    off_pace, live_pace = ids(offline, pacing), ids(live, pacing)
    print(f"pacing announcements: offline {len(off_pace)}, live {len(live_pace)}, "
          f"differing {len(off_pace ^ live_pace)}")  # fmt: skip
    assert len(off_pace) > 10
    assert abs(len(live_pace) - len(off_pace)) <= 0.25 * len(off_pace)  # measured 8-15 %

    # Which event crosses the announcement threshold is order-sensitive (the PI pacer
    # of issue 11 re-plans on every impression and every minute of the worker's clock:
    # measured 34 of 118 identical by event_id); the factors announced agree.
    def factors(outputs: list[dict]) -> dict[str, float]:
        by: dict[str, list[float]] = {}
        for o in sorted((o for o in outputs if pacing(o)), key=lambda o: o["ts"]):
            by.setdefault(o["campaign_id"], []).append(o["pacing_factor"])
        return {c: sorted(v)[len(v) // 2] for c, v in by.items()}

    off_f, live_f = factors(offline), factors(live)
    print(f"median announced factor: offline {off_f}, live {live_f}")
    assert off_f.keys() == live_f.keys()
    assert all(live_f[c] == pytest.approx(off_f[c], rel=0.1) for c in off_f)
    assert len(live) == len({o["event_id"] for o in live}), "duplicate output ids"

    # One worker: its two partitions feed one shared knowledge, as the replay's do.
    for model in ("click", "conversion"):
        off, on = report["models"][model], live_models["knowledge"]["scores"][model]
        assert (on["n"], on["positives"]) == (off["n"], off["positives"]), model
    # Log-loss depends on the order labels are learned in; with hundreds of click labels
    # it agrees closely (conversion labels are too few here for a meaningful figure).
    off, on = report["models"]["click"], live_models["knowledge"]["scores"]["click"]
    assert on["logloss"] == pytest.approx(off["logloss"], abs=0.01)
    assert Path(tmp_path / "out" / "report.json").exists()
