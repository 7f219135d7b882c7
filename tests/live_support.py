"""Helpers shared by the live-worker tests: streams to produce, the offline reference,
HTTP reads of the worker, and profile comparison."""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import orjson

from backtest.synthetic import campaigns, generate
from online_models.config import EngineConfig
from online_models.decode import decode_dict
from online_models.events import Campaign
from online_models.runner import Runner
from streams.app import kafka_client_kwargs
from streams.settings import Settings
from streams.topics import create_topics

Event = tuple[str, dict[str, Any]]
IGNORED_PROFILE_FIELDS = {"segment"}  # depends on the partition's k-means state, see docs


def stream(n_users: int, duration_s: int, seed: int) -> list[Event]:
    return list(generate(n_users=n_users, duration_s=duration_s, seed=seed))


def setup_topics(env: dict[str, str]) -> Settings:
    settings = Settings.from_env(env)
    asyncio.run(create_topics(settings, kafka_client_kwargs(settings)))
    return settings


def topic_names(settings: Settings) -> dict[str, str]:
    """Logical stream name -> the topic this test's worker reads."""
    return {logical: topic for topic, logical in settings.input_topics().items()} | {
        "campaigns": settings.topic_campaigns
    }


def records(events: Iterable[Event], settings: Settings) -> list[tuple[str, bytes, bytes, int]]:
    names = topic_names(settings)
    return [
        (names[t], str(e["user_id"]).encode(), orjson.dumps(e), int(e["ts"])) for t, e in events
    ]


def raw_records(raw: Iterable[tuple[str, bytes]], settings: Settings) -> list[Any]:
    names = topic_names(settings)
    return [(names.get(t, t), b"bad-key", value, 0) for t, value in raw]


def campaign_records(settings: Settings) -> list[tuple[str, bytes, bytes, int]]:
    return [
        (settings.topic_campaigns, c["campaign_id"].encode(), orjson.dumps(c), 0)
        for c in campaigns(3)
    ]


def offline(events: Iterable[Event], partitions: int) -> Runner:
    """The reference: the same events once through the domain code, no Kafka."""
    runner = Runner(EngineConfig(partitions=partitions))
    for c in campaigns(3):
        runner.set_campaign(msgspec.convert(c, Campaign))
    for topic, event in events:
        runner.feed(topic, decode_dict(topic, event))  # type: ignore[arg-type]
    return runner


def get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def poll(check: Callable[[], tuple[bool, str]], timeout_s: float, every_s: float = 1.0) -> None:
    deadline = time.monotonic() + timeout_s
    detail = ""
    while time.monotonic() < deadline:
        done, detail = check()
        if done:
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s: {detail}")


def profile_diff(live: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Field-by-field differences, floats compared to 1e-9 relative (summation order)."""
    out = []
    for key in sorted(set(live) | set(expected)):
        if key in IGNORED_PROFILE_FIELDS:
            continue
        a, b = live.get(key), expected.get(key)
        if not _close(a, b):
            out.append(f"{key}: live={a!r} offline={b!r}")
    return out


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
