"""Personal data on the real worker and broker (issue 21): with ECOM_PSEUDONYMIZE=1 no
byte the worker wrote (every topic, its data dir, its log) holds a raw id of its
input; an erasure reaches the profile, the changelog and the next snapshot."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from kafka_harness import PROJECT_ROOT, Message, WorkerProcess, produce, read_all, wait_for
from live_support import campaign_records, get_json, records, setup_topics
from privacy_support import KEY_1, marked_stream, raw_hits, raw_user

from online_models.pseudonyms import Pseudonymizer
from online_models.snapshot import decode_snapshot
from streams.settings import Settings

pytestmark = pytest.mark.integration
NONE = {m: 0 for m in raw_hits(b"")}


def _env(fast_worker_env: dict[str, str]) -> dict[str, str]:
    return {
        **fast_worker_env,
        "ECOM_PSEUDONYMIZE": "1",
        "ECOM_PSEUDONYM_KEY": KEY_1,
        "ECOM_SNAPSHOT_EVERY_EVENTS": "100",
        "ECOM_SNAPSHOT_EVERY_S": "1",
        "ECOM_SNAPSHOT_MAX_SHARE": "1",
    }


def _written_topics(s: Settings) -> list[str]:
    """Every topic this worker writes to (inputs too: it re-sends records there)."""
    return [
        s.topic_clickstream, s.topic_orders, s.topic_impressions, s.topic_recommendations,
        s.topic_bid_adjustments, s.topic_dead_letter, s.topic_snapshots,
        s.topic_erasure_requests, s.topic_erasure_confirmations, f"{s.app_id}-users-changelog",
    ]  # fmt: skip


def _snapshots(msgs: list[Message]) -> list[tuple[int, dict]]:
    """(partition, decoded state) of every complete snapshot, oldest first."""
    parts: dict[tuple[int, str], list[bytes]] = {}
    done = []
    for m in msgs:
        h = {k: (v or b"").decode() for k, v in m.headers if isinstance(v, bytes | None)}
        sid, index, count = h["snapshot_id"], int(h["chunk"]), int(h["chunks"])
        chunks = parts.setdefault((m.partition, sid), []) if index else []
        if index == 0:
            parts[(m.partition, sid)] = chunks
        chunks.append(m.value or b"")
        if len(chunks) == count:
            done.append((m.partition, decode_snapshot(b"".join(chunks))))
    return done


def _settled(base: str, user: str, worker: WorkerProcess, timeout_s: float = 120) -> None:
    """Wait until the user's profile exists and stops changing for 3 s."""
    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while True:
        now = get_json(f"{base}/profiles/{user}")
        if now != last:
            last, since = now, time.monotonic()
        elif now is not None and time.monotonic() - since > 3:
            return
        assert time.monotonic() < deadline, worker.log_tail()
        time.sleep(0.5)


def test_no_raw_id_in_any_byte_the_worker_wrote(broker, fast_worker_env, tmp_path):
    env = _env(fast_worker_env)
    settings = setup_topics(env)
    base = f"http://127.0.0.1:{env['ECOM_WEB_PORT']}"
    events = marked_stream(n_users=60, duration_s=3 * 3600, seed=21)
    produced = records(events, settings)
    # A refused record with a raw id and an email: its dead letter must hold neither.
    bad = orjson.dumps({"user_id": raw_user("bad"), "email": "rawmail-bad@x.org", "ts": 1})
    produced.append((settings.topic_clickstream, raw_user("bad").encode(), bad, 0))
    log = tmp_path / "worker.log"
    with WorkerProcess(env, log_path=log) as worker:
        worker.wait_http(f"{base}/readyz", timeout_s=60)
        produce(broker.bootstrap, campaign_records(settings))
        produce(broker.bootstrap, produced)
        last = max(events, key=lambda te: te[1]["ts"])[1]["user_id"]
        user = Pseudonymizer.from_spec(KEY_1).pseudonym(last)
        wait_for(
            broker.bootstrap,
            settings.topic_recommendations,
            lambda rs: any(r.key == user.encode() for r in rs),
            timeout_s=120,
        )
        wait_for(broker.bootstrap, settings.topic_dead_letter, lambda rs: len(rs) >= 1, 30)
        profile = get_json(f"{base}/profiles/{user}")
        assert profile is not None and profile["profile"]["user_id"] == user
        time.sleep(3)  # an idle snapshot after the last event
        worker.stop()
    ours = {(key, value) for _, key, value, _ in produced}
    written: list[bytes] = []
    counts: dict[str, int] = {}
    for topic in _written_topics(settings):
        msgs = [m for m in read_all(broker.bootstrap, topic) if (m.key, m.value) not in ours]
        counts[topic] = len(msgs)
        for m in msgs:
            written += [m.key or b"", m.value or b""]
            written += [v for _, v in m.headers if isinstance(v, bytes)]
        if topic == settings.topic_snapshots:
            written += [orjson.dumps(s) for _, s in _snapshots(msgs)]  # zlib inside
    for path in Path(env["ECOM_DATA_DIR"]).rglob("*"):
        if path.is_file():
            written.append(path.read_bytes())
    written.append(log.read_bytes())
    blob = b"".join(written)
    print(f"grepped {len(blob):,} bytes the worker wrote; records per topic: {counts}")
    assert counts[settings.topic_recommendations] > 0 and counts[settings.topic_snapshots] > 0
    assert counts[settings.topic_dead_letter] >= 1
    assert counts[f"{settings.app_id}-users-changelog"] > 0
    assert user.encode() in blob  # the pseudonyms are there...
    assert raw_hits(blob) == NONE  # ...the raw ids, session ids and emails are not


def test_erasure_reaches_profile_changelog_and_next_snapshot(broker, fast_worker_env, tmp_path):
    env = _env(fast_worker_env)
    settings = setup_topics(env)
    base = f"http://127.0.0.1:{env['ECOM_WEB_PORT']}"
    events = marked_stream(n_users=30, duration_s=3 * 3600, seed=22)
    counts: dict[str, int] = {}
    for _, e in events:
        counts[e["user_id"]] = counts.get(e["user_id"], 0) + 1
    target = max(counts, key=counts.__getitem__)
    user = Pseudonymizer.from_spec(KEY_1).pseudonym(target)
    last_ts = max(e["ts"] for _, e in events)
    changelog = f"{settings.app_id}-users-changelog"
    with WorkerProcess(env, log_path=tmp_path / "worker.log") as worker:
        worker.wait_http(f"{base}/readyz", timeout_s=60)
        produce(broker.bootstrap, campaign_records(settings))
        produce(broker.bootstrap, records(events, settings))
        # Erase once every event is in: later ones would make a fresh profile again.
        _settled(base, user, worker)
        erased_at = int(time.time() * 1000)
        cli = subprocess.run(
            [sys.executable, "-m", "ecom_cli", "erase", target, "--request-id", "req-1"],
            env={**os.environ, **env, "PYTHONPATH": str(PROJECT_ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        assert target not in cli.stdout + cli.stderr and user in cli.stdout
        (conf,) = wait_for(
            broker.bootstrap, settings.topic_erasure_confirmations, lambda rs: len(rs) >= 1, 60
        )
        body = orjson.loads(conf.value or b"")
        assert body["user_id"] == user and body["request_id"] == "req-1"
        assert body["removed"]["profile"] == 1 and body["key_id"] == "k1"
        assert get_json(f"{base}/profiles/{user}") is None  # 404
        home = body["partition"]

        def newer_snapshot(msgs: list[Message]) -> bool:
            return any(
                m.partition == home and m.timestamp > erased_at and m.headers for m in msgs
            ) and bool(_snapshots([m for m in msgs if m.timestamp > erased_at]))

        snaps = wait_for(broker.bootstrap, settings.topic_snapshots, newer_snapshot, 60)
        after = [s for p, s in _snapshots([m for m in snaps if m.timestamp > erased_at])]
        assert after and all(user not in orjson.dumps(s).decode() for s in after)
        before = [s for _, s in _snapshots([m for m in snaps if m.timestamp <= erased_at])]
        assert any(user in orjson.dumps(s).decode() for s in before), "no trace to erase"
        keys = {user.encode(), orjson.dumps(user)}  # the table's key serializer: json
        mine = [m for m in read_all(broker.bootstrap, changelog) if m.key in keys]
        assert len(mine) >= 2 and mine[-1].value is None  # the latest value: a tombstone
        # Later events of the id start a fresh profile.
        later = {"event_id": "after-erasure", "ts": last_ts + 1000, "user_id": target,
                 "type": "view", "item_id": "i1", "category": "books"}  # fmt: skip
        produce(broker.bootstrap, records([("clickstream", later)], settings))
        deadline = time.monotonic() + 60
        while (fresh := get_json(f"{base}/profiles/{user}")) is None:
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.5)
        assert fresh["profile"]["totals"] == {"view": 1}
