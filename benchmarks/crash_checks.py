"""What the crash benchmark checks once the workers have stopped: the stored profiles,
the output ids, and the writes of a paused worker (benchmarks/crash_bench.py)."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from kafka_harness import read_all
from live_support import profile_diff

from online_models.outputs import IDENTITY_FIELDS
from online_models.runner import Runner
from online_models.state import read_state
from streams.settings import Settings

WRITER_HEADER = "ecom-writer"  # "<pid>:<group generation>", streams/output_sender.py


def _key(raw: bytes | None) -> str:
    text = (raw or b"").decode()
    return str(orjson.loads(text)) if text.startswith('"') else text


def check_profiles(bootstrap: str, app_id: str, expected: Runner) -> dict[str, Any]:
    """The users changelog's last value per user (what a restart recovers) against the
    offline pass."""
    stored: dict[str, bytes | None] = {}
    for msg in read_all(bootstrap, f"{app_id}-users-changelog", timeout_s=300):
        stored[_key(msg.key)] = msg.value
    wrong, missing, unreadable = [], 0, 0
    users = [u for states in expected.states for u in states]
    for user in users:
        raw = stored.get(user)
        if raw is None:
            missing += 1
            continue
        state = read_state(raw)
        if state is None:
            unreadable += 1
            continue
        diff = profile_diff(
            msgspec.to_builtins(state.profile), msgspec.to_builtins(expected.profile(user))
        )
        if diff:
            wrong.append(f"{user}: {diff[:2]}")
    extra = len(set(stored) - set(users))
    return {
        "users": len(users),
        "equal": len(users) - len(wrong) - missing - unreadable,
        "wrong": len(wrong) + unreadable,
        "missing": missing,
        "extra": extra,
        "examples": wrong[:5],
    }


def check_outputs(bootstrap: str, s: Settings) -> dict[str, Any]:
    """Per output topic: ids, ids written more than once, ids whose copies differ, and
    copies that disagree on the record they stand for (or sit in two partitions)."""
    figures: dict[str, Any] = {"identity_conflicts": 0}
    for topic in (s.topic_recommendations, s.topic_bid_adjustments):
        copies: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for msg in read_all(bootstrap, topic, timeout_s=300):
            body = orjson.loads(msg.value or b"{}")
            copies.setdefault(str(body.get("event_id")), []).append((msg.partition, body))
        repeated = {k: v for k, v in copies.items() if len(v) > 1}
        differing = conflicts = 0
        for versions in repeated.values():
            bodies = [b for _, b in versions]
            if any(b != bodies[0] for b in bodies):
                differing += 1
            identity = {
                (p, *(orjson.dumps(b.get(f)) for f in IDENTITY_FIELDS)) for p, b in versions
            }
            conflicts += len(identity) > 1
        figures[topic] = {
            "records": sum(len(v) for v in copies.values()),
            "ids": len(copies),
            "ids_written_twice_or_more": len(repeated),
            "ids_whose_copies_differ": differing,
            "identity_conflicts": conflicts,
        }
        figures["identity_conflicts"] += conflicts
    return figures


def paused_writes(bootstrap: str, s: Settings, pauses: list[tuple[int, int, int]]) -> int:
    """Outputs a paused worker wrote after it resumed, under the group generation it had
    before the pause (it was fenced out meanwhile: the pause outlasts its session)."""
    bad = 0
    topics = (s.topic_recommendations, s.topic_bid_adjustments, s.topic_dead_letter)
    records = [m for t in topics for m in read_all(bootstrap, t, timeout_s=300)]
    for pid, generation, resumed_ms in pauses:
        for msg in records:
            writer = dict(msg.headers).get(WRITER_HEADER)
            if writer is None or msg.timestamp is None or msg.timestamp <= resumed_ms:
                continue
            text = writer.decode() if isinstance(writer, bytes) else str(writer)
            w_pid, _, w_gen = text.partition(":")
            if int(w_pid) == pid and int(w_gen or -1) <= generation:
                bad += 1
    return bad
