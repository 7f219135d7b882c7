"""The crash benchmark's input and its reference (benchmarks/crash_bench.py).

Real events: the Taobao sample's clicks and orders (110,300 events, about 2 hours) and
the Open Bandit random log's impressions with their ad clicks, whose timestamps are
moved linearly into the Taobao window so that the three input topics carry traffic at
the same time, with one campaigns-topic record for the Open Bandit campaign. The
reference is one offline pass of the same events through the domain
(`online_models.runner.Runner`), partitioned as Kafka's producer partitions them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from backtest.importers.common import Tally
from backtest.importers.open_bandit import import_open_bandit
from backtest.importers.taobao import import_taobao
from online_models.config import EngineConfig
from online_models.decode import decode_dict
from online_models.events import Campaign
from online_models.runner import Runner

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TAOBAO = DATA / "taobao_userbehavior_sample" / "UserBehavior.csv"
OPEN_BANDIT = DATA / "open_bandit_random" / "all"

Event = dict[str, Any]  # one input event, with its logical `topic`


def campaign_events(start_ms: int) -> list[Event]:
    return [
        {
            "topic": "campaigns",
            "campaign_id": "all",
            "ts": start_ms,  # for the sort only; not part of the record
            "daily_budget": 2_000.0,
            "target_roas": 4.0,
            "objective": "clicks",
        }
    ]


def real_events() -> list[Event]:
    """Taobao + Open Bandit (moved into the Taobao window) + a campaign, in event time."""
    for path in (TAOBAO, OPEN_BANDIT):
        if not path.exists():
            raise SystemExit(f"{path} is missing: the crash benchmark runs on ../shared/data")
    taobao = list(import_taobao([str(TAOBAO)], Tally()))
    bandit = list(import_open_bandit([str(OPEN_BANDIT)], Tally()))
    lo, hi = min(e["ts"] for e in taobao), max(e["ts"] for e in taobao)
    b_lo, b_hi = min(e["ts"] for e in bandit), max(e["ts"] for e in bandit)
    scale = (hi - lo) / max(1, b_hi - b_lo)
    for e in bandit:
        e["ts"] = lo + int((e["ts"] - b_lo) * scale)
    events = campaign_events(lo - 1) + taobao + bandit
    # Event-time order; an ad click comes after its impression at one time (the merge's
    # stream rank: impressions before clicks before orders).
    rank = {"campaigns": 0, "ad-impressions": 1, "clickstream": 2, "orders": 3}
    events.sort(key=lambda e: (e["ts"], rank[e["topic"]]))
    return events


def body_of(e: Event) -> Event:
    """The record's JSON body: the event without its logical topic (and a campaign
    without the sort time)."""
    drop = ("topic", "ts") if e["topic"] == "campaigns" else ("topic",)
    return {k: v for k, v in e.items() if k not in drop}


def reference(events: list[Event], partitions: int, domain: dict[str, str]) -> Runner:
    """One offline pass of `events` with the worker's config for `partitions`."""
    runner = Runner(EngineConfig.for_run(partitions, domain))
    for e in events:
        body = body_of(e)
        if e["topic"] == "campaigns":
            runner.set_campaign(msgspec.convert(body, Campaign))
        else:
            runner.feed(e["topic"], decode_dict(e["topic"], body))  # type: ignore[arg-type]
    return runner
