"""Streams whose personal values are easy to find in bytes: every user id starts with
`rawuser-`, every session id with `rawsess-`, and impressions carry an email
`rawmail-...` in their context (a personal field, dropped at decode)."""

from __future__ import annotations

from typing import Any

from backtest.synthetic import generate

KEY_1 = "k1:" + "a1" * 32
KEY_2 = "k2:" + "b2" * 32
RAW_MARKERS = (b"rawuser-", b"rawsess-", b"rawmail-")


def raw_user(n: str) -> str:
    return f"rawuser-{n}-x"


def marked_stream(n_users: int, duration_s: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for topic, e in generate(n_users=n_users, duration_s=duration_s, seed=seed):
        e = dict(e)
        e["user_id"] = raw_user(str(e["user_id"]))
        if e.get("session_id") is not None:
            e["session_id"] = f"rawsess-{e['session_id']}-x"
        if topic == "ad-impressions":
            e["context"] = {**e.get("context", {}), "email": f"rawmail-{e['user_id']}@x.org"}
        out.append((topic, e))
    return out


def raw_hits(blob: bytes) -> dict[bytes, int]:
    """How often each raw marker occurs in `blob` (all zero: no raw value)."""
    return {m: blob.count(m) for m in RAW_MARKERS}
