"""Replay throughput on real data: decode-only ceiling vs. the full replay pipeline.

Imports the Taobao UserBehavior sample, and a larger stream made by repeating it with
shifted user/item ids and times (~1M events by default). For each stream, in a fresh
process (so peak RSS is that stream's own), it measures side by side:
(a) decode only: iterate the lines and `decode_input` each (the ceiling);
(b) the full replay (merge, engine, next-item and bidding bookkeeping, outputs).

    .venv/bin/python benchmarks/replay_bench.py [--events 1000000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import multiprocessing
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
GOAL_RATE, GOAL_RATIO = 100_000, 0.5


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


def build(tmp: Path, events: int) -> tuple[Path, Path]:
    """The imported sample, and the sample repeated up to at least `events` events."""
    imported = tmp / "taobao.jsonl"
    stats = run_import("taobao", [str(SAMPLE)], str(imported))
    base = list(read_events(imported))
    span = base[-1]["ts"] - base[0]["ts"] + 1
    copies = max(1, -(-events // stats.events))
    stream = tmp / f"taobao_x{copies}.jsonl"
    write_events(stream, _shifted(base, copies, span))
    return imported, stream


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


def measure(stream: Path, profile: bool = False) -> dict[str, Any]:
    n, decode_s = decode_only(stream)
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    report = replay([stream], stream.with_suffix(".out"), ReplayOptions())
    if profiler:
        profiler.disable()
    replay_s = time.perf_counter() - start
    top = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        top = out.getvalue()
    return {
        "events": n,
        "decode_rate": n / decode_s,
        "replay_rate": n / replay_s,
        "replay_s": replay_s,
        "peak_rss_mb": peak_rss_mb(),
        "active_users": report["counts"]["active_users"],
        "outputs": report["counts"]["outputs_by_topic"],
        "profile": top,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--profile", action="store_true", help="cProfile the larger replay")
    args = ap.parse_args()
    if not SAMPLE.is_file():
        print(f"missing {SAMPLE}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp_name:
        streams = build(Path(tmp_name), args.events)
        ctx = multiprocessing.get_context("spawn")
        results = []
        for i, stream in enumerate(streams):
            with ctx.Pool(1) as pool:
                profile = args.profile and i == len(streams) - 1
                results.append(pool.apply(measure, (stream, profile)))
    print(f"{'stream':<22}{'events':>11}{'decode ev/s':>13}{'replay ev/s':>13}"
          f"{'ratio':>7}{'peak RSS':>10}{'users':>9}")  # fmt: skip
    for name, r in zip(("sample", "repeated"), results, strict=True):
        ratio = r["replay_rate"] / r["decode_rate"]
        print(f"{name:<22}{r['events']:>11,}{r['decode_rate']:>13,.0f}{r['replay_rate']:>13,.0f}"
              f"{ratio:>7.3f}{r['peak_rss_mb']:>8,.0f}MB{r['active_users']:>9,}")  # fmt: skip
    big = results[-1]
    ratio = big["replay_rate"] / big["decode_rate"]
    verdict = "met" if big["replay_rate"] >= GOAL_RATE and ratio >= GOAL_RATIO else "NOT met"
    print(f"goal (>= {GOAL_RATE:,} ev/s and >= {GOAL_RATIO} of decode): {verdict}")
    print(f"outputs of the repeated stream: {big['outputs']} in {big['replay_s']:.1f} s")
    if big["profile"]:
        print(big["profile"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
