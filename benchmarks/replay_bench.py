"""Replay throughput on real data: decode-only ceiling vs. the full replay pipeline.

Imports the Taobao UserBehavior sample, repeats it with shifted user/item ids and
times up to ~1M events, then measures in one process:
(a) decode only: iterate the lines and `decode_input` each (the ceiling);
(b) the full replay (merge, engine, next-item and bidding bookkeeping, outputs).

    .venv/bin/python benchmarks/replay_bench.py [--events 1000000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from backtest.importers import run_import
from backtest.jsonl import iter_lines, read_events, write_events
from backtest.replay import ReplayOptions, peak_rss_mb, replay
from online_models.decode import decode_input

SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "shared/data/taobao_userbehavior_sample"
    / ("UserBehavior.csv")
)
ID_FIELDS = ("event_id", "user_id", "session_id", "item_id", "order_id")


def _shifted(base: list[dict[str, Any]], copies: int, span_ms: int) -> Iterator[dict[str, Any]]:
    # Each copy is a new population (ids suffixed) living in the next time window, so
    # the stream stays sorted by time and per-user behaviour stays realistic.
    for c in range(copies):
        for ev in base:
            out = dict(ev)
            out["ts"] = ev["ts"] + c * span_ms
            if c:
                for key in ID_FIELDS:
                    if key in out:
                        out[key] = f"{out[key]}~{c}"
                if "items" in out:
                    out["items"] = [{**i, "item_id": f"{i['item_id']}~{c}"} for i in out["items"]]
            yield out


def build(tmp: Path, events: int) -> Path:
    imported = tmp / "taobao.jsonl"
    stats = run_import("taobao", [str(SAMPLE)], str(imported))
    base = list(read_events(imported))
    span = base[-1]["ts"] - base[0]["ts"] + 1
    copies = max(1, -(-events // stats.events))
    stream = tmp / "taobao_x.jsonl"
    write_events(stream, _shifted(base, copies, span))
    return stream


def decode_only(path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    n = 0
    for line in iter_lines(path):
        topic = (
            orjson.loads(line)["topic"]
            if not line.startswith(b'{"topic":"')
            else (line[10 : line.index(b'"', 10)].decode())
        )
        decode_input(topic, line)
        n += 1
    return n, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--profile", action="store_true", help="profile the replay (slower)")
    args = ap.parse_args()
    if not SAMPLE.is_file():
        print(f"missing {SAMPLE}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        stream = build(tmp, args.events)
        n, decode_s = decode_only(stream)
        profiler = cProfile.Profile() if args.profile else None
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        report = replay([stream], tmp / "out", ReplayOptions())
        if profiler:
            profiler.disable()
        replay_s = time.perf_counter() - start
        counts = report["counts"]["outputs_by_topic"]
    decode_rate, replay_rate = n / decode_s, n / replay_s
    print(f"events               {n:,}")
    print(f"decode only          {decode_rate:,.0f} events/s ({decode_s:.1f} s)")
    print(f"full replay          {replay_rate:,.0f} events/s ({replay_s:.1f} s)")
    print(f"replay / decode      {replay_rate / decode_rate:.3f}")
    print(f"peak RSS             {peak_rss_mb():,.0f} MB")
    print(f"outputs              {counts}")
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
