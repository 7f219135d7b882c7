"""Personal data (issue 21) in the domain: pseudonyms at decode, personal fields dropped,
dead letters without personal data, erasure from every copy, the replay alike."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter

import orjson
import pytest
from privacy_support import KEY_1, KEY_2, marked_stream, raw_hits, raw_user

from backtest.replay import ReplayOptions, replay
from online_models.config import EngineConfig
from online_models.decode import decode_dict, decode_input
from online_models.engine import PartitionEngine
from online_models.erasure import ERASURE, ErasureRequest
from online_models.knowledge import SharedKnowledge
from online_models.outputs import BidAdjustment, encode_output
from online_models.pipeline import REPARTITION, DictStates, InputRecord, Pipeline
from online_models.pseudonyms import Privacy, Pseudonymizer, privacy_from_env
from online_models.runner import Runner
from online_models.segment_counts import is_buyer_segment
from streams.settings import Settings, SettingsError

CFG = EngineConfig(partitions=2)


def _pipeline(privacy: Privacy) -> tuple[Pipeline, list[DictStates], list[PartitionEngine]]:
    campaigns: dict = {}
    knowledge = SharedKnowledge(CFG, campaigns)
    engines = [PartitionEngine(CFG, p, campaigns, knowledge) for p in range(2)]
    states = [DictStates(), DictStates()]
    pipe = Pipeline(
        CFG, engines.__getitem__, states.__getitem__, lambda: knowledge, None, None, privacy
    )
    return pipe, states, engines


def _run(pipe: Pipeline, topic: str, value: bytes, key: bytes, partition: int = 0) -> list:
    """Feed one record as a worker would, following repartitions; all emissions."""
    out = []
    todo = [(key, value, partition)]
    offset = 0
    while todo:
        key, value, partition = todo.pop()
        offset += 1
        step = pipe.step(InputRecord(topic, topic, partition, offset, key, value))
        pipe.apply(step)
        for e in step.emissions:
            if e.topic == REPARTITION:
                todo.append((e.key, e.value, e.partition))
            else:
                out.append(e)
    return out


def test_pseudonyms_are_keyed_stable_and_accept_both_keys_in_rotation():
    old = Pseudonymizer.from_spec(KEY_1)
    both = Pseudonymizer.from_spec(f"{KEY_2},{KEY_1}")
    p_old = old.pseudonym("alice")
    p_new = both.pseudonym("alice")
    assert p_old.startswith("k1.") and p_new.startswith("k2.") and p_old != p_new
    assert both.pseudonym(p_old) == p_old  # accepted: a pseudonym under the old key
    assert both.every_pseudonym("alice") == [p_new, p_old]
    # Not a plain hash: another key gives another pseudonym.
    assert Pseudonymizer.from_spec("k1:" + "00" * 32).pseudonym("alice") != p_old


def test_the_key_is_secret_and_checked():
    env = {"ECOM_PSEUDONYMIZE": "1", "ECOM_PSEUDONYM_KEY": KEY_1}
    s = Settings.from_env(env)
    assert s.redacted()["pseudonym_key"] == "***"
    assert "a1a1" not in repr(s.redacted())
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"ECOM_PSEUDONYMIZE": "1", "ECOM_PSEUDONYM_KEY": "k1:abcd"})
    assert "abcd" not in str(err.value)
    with pytest.raises(ValueError):
        privacy_from_env({"ECOM_PSEUDONYMIZE": "1"})


def test_pipeline_holds_no_raw_id_anywhere():
    pipe, states, engines = _pipeline(Privacy(Pseudonymizer.from_spec(KEY_1)))
    sent = []
    for topic, e in marked_stream(n_users=20, duration_s=3 * 3600, seed=3):
        sent += _run(pipe, topic, orjson.dumps(e), e["user_id"].encode())
    assert sent, "no outputs"
    blob = b"".join(e.value + (e.key or b"") for e in sent)
    blob += b"".join(json.dumps(en.to_state()).encode() for en in engines)
    blob += b"".join(repr(dict(s)).encode() for s in states)
    assert raw_hits(blob) == {m: 0 for m in raw_hits(b"")}
    recs = [orjson.loads(e.value) for e in sent if e.topic == "recommendations"]
    assert recs and all(r["key_id"] == "k1" and r["user_id"].startswith("k1.") for r in recs)
    user = Pseudonymizer.from_spec(KEY_1).pseudonym(raw_user("u1"))
    assert any(user in s for s in states)


def test_personal_fields_are_dropped_at_decode_and_from_dead_letters():
    raw = orjson.dumps(
        {"impression_id": "i", "ts": 1_700_000_000, "user_id": "rawuser-1-x",
         "campaign_id": "c", "context": {"email": "rawmail-1@x.org", "device": "mobile"}}
    )  # fmt: skip
    ev = Privacy().event(decode_input("ad-impressions", raw))
    assert ev.context == {"device": "mobile"}
    pipe, _, _ = _pipeline(Privacy(Pseudonymizer.from_spec(KEY_1)))
    bad = raw.replace(b'"campaign_id":"c",', b"")  # missing field: a dead letter
    (dead,) = _run(pipe, "ad-impressions", bad, b"rawuser-1-x")
    letter = orjson.loads(dead.value)
    assert letter["payload_privacy"] == "redacted" and letter["reason"] == "missing_field"
    assert raw_hits(dead.value + dead.key) == {m: 0 for m in raw_hits(b"")}
    assert b"mobile" in dead.value  # the rest of the record is kept for diagnosis
    (junk,) = _run(pipe, "clickstream", b"rawuser-1-x not json", b"rawuser-1-x")
    assert orjson.loads(junk.value)["payload_privacy"] == "withheld"
    assert b"rawuser" not in junk.value + junk.key
    # Without pseudonyms a record with no personal field keeps its original bytes.
    plain, _, _ = _pipeline(Privacy())
    (kept,) = _run(plain, "clickstream", b"not json", b"u")
    assert orjson.loads(kept.value)["payload"] == "not json"


def test_erasure_removes_every_copy_and_later_events_start_afresh():
    keys = Pseudonymizer.from_spec(KEY_1)
    pipe, states, engines = _pipeline(Privacy(keys))
    events = marked_stream(n_users=10, duration_s=4 * 3600, seed=5)
    for topic, e in events:
        _run(pipe, topic, orjson.dumps(e), e["user_id"].encode())
    counts = {}
    for _, e in events:
        counts[e["user_id"]] = counts.get(e["user_id"], 0) + 1
    target = max(counts, key=counts.__getitem__)
    user = keys.pseudonym(target)
    home = pipe.home_of(user)
    assert states[home].get(user) is not None
    last_ts = max(e["ts"] for _, e in events)
    req = orjson.dumps({"request_id": "r1", "user_id": target, "ts": last_ts})
    (conf,) = _run(pipe, ERASURE, req, target.encode())
    body = orjson.loads(conf.value)
    assert conf.topic == "erasure-confirmations" and body["user_id"] == user
    assert body["removed"]["profile"] == 1 and body["key_id"] == "k1"
    assert states[home].get(user) is None
    snap = json.dumps(engines[home].to_state())
    assert user not in snap, "the next snapshot still names the user"
    # Later events of the id start a fresh profile.
    later = {"event_id": "after", "ts": last_ts + 1000, "user_id": target, "type": "view",
             "item_id": "i1", "category": "books"}  # fmt: skip
    _run(pipe, "clickstream", orjson.dumps(later), target.encode())
    assert states[home][user].profile.totals == {"view": 1}


def test_erasure_during_rotation_reaches_the_pseudonym_under_each_key():
    pipe, states, _ = _pipeline(Privacy(Pseudonymizer.from_spec(KEY_1)))
    ev = {"event_id": "e", "ts": 1_700_000_000_000, "user_id": "rawuser-r-x", "type": "view",
          "item_id": "i1"}  # fmt: skip
    _run(pipe, "clickstream", orjson.dumps(ev), b"rawuser-r-x")
    rotated = Pseudonymizer.from_spec(f"{KEY_2},{KEY_1}")
    pipe.privacy = Privacy(rotated)
    ev2 = dict(ev, event_id="e2", ts=ev["ts"] + 1000)
    _run(pipe, "clickstream", orjson.dumps(ev2), b"rawuser-r-x")
    assert sum(len(s) for s in states) == 2  # the same person under the old and new key
    req = orjson.dumps({"request_id": "r", "user_id": "rawuser-r-x", "ts": ev2["ts"]})
    confs = _run(pipe, ERASURE, req, b"rawuser-r-x")
    assert sorted(orjson.loads(c.value)["key_id"] for c in confs) == ["k1", "k2"]
    assert sum(len(s) for s in states) == 0


def test_replay_honours_pseudonyms_and_erasure(tmp_path):
    events = marked_stream(n_users=15, duration_s=3 * 3600, seed=7)
    target = events[0][1]["user_id"]
    last_ts = max(e["ts"] for _, e in events)
    lines = [orjson.dumps({"topic": t, **e}) for t, e in events]
    lines.append(orjson.dumps({"topic": ERASURE, "request_id": "r", "user_id": target,
                               "ts": last_ts + 1}))  # fmt: skip
    lines.append(b'{"topic":"clickstream","user_id":"rawuser-bad-x"}')  # a dead letter
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    privacy = Privacy(Pseudonymizer.from_spec(KEY_1))
    report = replay([path], tmp_path / "out", ReplayOptions(partitions=2, privacy=privacy))
    assert report["counts"]["events_by_topic"][ERASURE] == 1
    blob = b"".join(
        gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        for p in (tmp_path / "out").iterdir()
    )
    confirmation = orjson.loads((tmp_path / "out" / "erasure-confirmations.jsonl").read_bytes())
    assert confirmation["removed"]["profile"] == 1
    assert raw_hits(blob) == {m: 0 for m in raw_hits(b"")}


def test_erasure_request_round_trip():
    req = ErasureRequest(request_id="r", user_id="u", ts=1_700_000_000_000)
    assert orjson.loads(encode_output(req))["user_id"] == "u"


def test_declined_consent_gets_non_personal_outputs_and_nothing_is_kept():
    pipe, states, engines = _pipeline(Privacy())
    base = {"ts": 1_700_000_000_000, "type": "view", "category": "books"}
    for n in range(30):  # other users make items trend
        ev = {**base, "event_id": f"o{n}", "user_id": f"other{n % 5}", "item_id": f"i{n % 4}"}
        _run(
            pipe,
            "clickstream",
            orjson.dumps(ev),
            ev["user_id"].encode(),
            pipe.home_of(ev["user_id"]),
        )
    user = "shy"
    home = pipe.home_of(user)
    seen = {**base, "event_id": "s0", "user_id": user, "item_id": "i9"}
    _run(pipe, "clickstream", orjson.dumps(seen), user.encode(), home)
    assert states[home].get(user) is not None  # consent not declined: personalised
    ev = {**base, "event_id": "s1", "user_id": user, "item_id": "i1", "consent": False}
    applied_before = engines[home].knowledge.applied
    (rec,) = _run(pipe, "clickstream", orjson.dumps(ev), user.encode(), home)
    body = orjson.loads(rec.value)
    assert body["strategy"] == "non_personal" and body["items"]
    assert "i1" not in [i["item_id"] for i in body["items"]]
    assert states[home].get(user) is None  # the earlier profile is gone too
    assert user not in json.dumps(engines[home].to_state())
    assert engines[home].knowledge.applied == applied_before  # nothing learned
    imp = {"impression_id": "imp1", "ts": base["ts"] + 5, "user_id": user, "campaign_id": "c1",
           "consent": False}  # fmt: skip
    (bid,) = _run(pipe, "ad-impressions", orjson.dumps(imp), user.encode(), home)
    b = orjson.loads(bid.value)
    assert b["reason"] == "no_consent" and b["p_click"] is None
    assert b["multiplier"] == b["pacing_factor"]
    assert states[home].get(user) is None and "imp1" not in json.dumps(engines[home].to_state())


def test_segment_labels_are_k_anonymous_in_bid_features():
    def run(k: int) -> tuple[Runner, set[str]]:
        runner = Runner(EngineConfig(partitions=2, segment_min_users=k, model_gate=0))
        shown: set[str] = set()
        for topic, e in marked_stream(n_users=60, duration_s=8 * 3600, seed=9):
            step = runner.feed(topic, decode_dict(topic, e))
            for o in step.outputs:
                if isinstance(o, BidAdjustment):
                    shown.update(f.feature for f in o.top_features)
        return runner, shown

    runner, shown = run(10_000)  # no segment has that many users
    labels = [st.profile.segment for s in runner.states for st in s.values()]
    buyers = [x for x in labels if is_buyer_segment(x)]
    assert buyers, "no buyer segments in the stream"
    # Every user in a buyer segment is counted once, in the segment of their profile.
    assert runner.knowledge.segment_counts.members == dict(Counter(buyers))
    assert {runner.knowledge.public_segment(x) for x in buyers} == {"any"}
    assert not any(re.search(r"segment=s\d", f) for f in shown)
    small, _ = run(1)
    assert any(is_buyer_segment(small.knowledge.public_segment(x)) for x in buyers)
