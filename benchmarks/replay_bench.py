"""Replay throughput on real data: decode-only ceiling vs. the full replay pipeline.

Imports the Taobao UserBehavior sample (110,300 events in 2.2 hours) and repeats it,
shifted in time, to ~1M events in two ways: with new user/item ids per copy (more
users, more items), and with the same users and items acting again (more events,
same population: peak RSS must then stay close to the sample's, since memory is
bounded per user and per item). For each stream, in a fresh process (so peak RSS is
that stream's own), it measures side by side:
(a) decode only: iterate the lines and `decode_input` each (the ceiling);
(b) the full replay (merge, engine, next-item and bidding bookkeeping, outputs);
(c) the output floor: only encoding and gzipping the outputs that (b) wrote, with the
    same C encoder and zlib level, per input event. It is what any engine, however
    fast, must spend to write these outputs, to set against the goal's budget.

    .venv/bin/python benchmarks/replay_bench.py [--events 1000000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import io
import multiprocessing
import pstats
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import orjson

from backtest.importers import run_import
from backtest.jsonl import iter_lines, read_events, write_events
from backtest.replay import ReplayOptions, peak_rss_mb, replay
from online_models.decode import decode_input
from online_models.outputs import BidAdjustment, Recommendation, encode_lines

SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "shared/data/taobao_userbehavior_sample"
    / ("UserBehavior.csv")
)
ID_FIELDS = ("event_id", "user_id", "session_id", "item_id", "order_id")
EVENT_ID_FIELDS = ("event_id", "session_id", "order_id")
GOAL_RATE, GOAL_RATIO = 100_000, 0.5


def _shifted(
    base: list[dict[str, Any]], copies: int, span_ms: int, new_population: bool
) -> Iterator[dict[str, Any]]:
    # Each copy lives in the next time window, so the stream stays sorted by time.
    # A new population suffixes user and item ids too; otherwise only the ids that
    # must stay unique per event (event, session, order) are suffixed.
    fields = ID_FIELDS if new_population else EVENT_ID_FIELDS
    for c in range(copies):
        for ev in base:
            out = dict(ev)
            out["ts"] = ev["ts"] + c * span_ms
            if c:
                for key in fields:
                    if key in out:
                        out[key] = f"{out[key]}~{c}"
                if "items" in out and new_population:
                    out["items"] = [{**i, "item_id": f"{i['item_id']}~{c}"} for i in out["items"]]
            yield out


def build(tmp: Path, events: int) -> list[tuple[str, Path]]:
    """The imported sample, and the sample repeated up to at least `events` events."""
    imported = tmp / "taobao.jsonl"
    stats = run_import("taobao", [str(SAMPLE)], str(imported))
    base = list(read_events(imported))
    span = base[-1]["ts"] - base[0]["ts"] + 1
    copies = max(1, -(-events // stats.events))
    streams = [("sample", imported)]
    for name, new in (("new users per copy", True), ("same users again", False)):
        stream = tmp / f"taobao_x{copies}_{'new' if new else 'same'}.jsonl"
        write_events(stream, _shifted(base, copies, span, new))
        streams.append((name, stream))
    return streams


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


def output_floor(outputs: Path) -> float:
    """Seconds to encode and gzip (level 1, as the replay does) the replay's outputs."""
    objs: list[msgspec.Struct] = [
        msgspec.json.decode(line, type=Recommendation if b'"items":' in line else BidAdjustment)
        for line in iter_lines(outputs)
    ]
    start = time.perf_counter()
    with gzip.GzipFile(fileobj=io.BytesIO(), mode="wb", compresslevel=1, mtime=0) as sink:
        for i in range(0, len(objs), 4096):
            sink.write(encode_lines(objs[i : i + 4096]))
    return time.perf_counter() - start


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
    peak_rss = peak_rss_mb()  # before the floor, which holds every output in memory
    floor_s = output_floor(stream.with_suffix(".out") / "outputs.jsonl.gz")
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
        "decode_us": decode_s / n * 1e6,
        "floor_us": floor_s / n * 1e6,
        "peak_rss_mb": peak_rss,
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
        for i, (_, stream) in enumerate(streams):
            with ctx.Pool(1) as pool:
                results.append(pool.apply(measure, (stream, args.profile and i == 1)))
    print(f"{'stream':<20}{'events':>11}{'decode ev/s':>13}{'replay ev/s':>13}"
          f"{'ratio':>7}{'peak RSS':>10}{'users':>9}{'floor us/ev':>13}")  # fmt: skip
    for (name, _), r in zip(streams, results, strict=True):
        ratio = r["replay_rate"] / r["decode_rate"]
        print(f"{name:<20}{r['events']:>11,}{r['decode_rate']:>13,.0f}{r['replay_rate']:>13,.0f}"
              f"{ratio:>7.3f}{r['peak_rss_mb']:>8,.0f}MB{r['active_users']:>9,}"
              f"{r['floor_us']:>13.2f}")  # fmt: skip
    big = results[1]
    ratio = big["replay_rate"] / big["decode_rate"]
    verdict = "met" if big["replay_rate"] >= GOAL_RATE and ratio >= GOAL_RATIO else "NOT met"
    print(f"speed goal (>= {GOAL_RATE:,} ev/s and >= {GOAL_RATIO} of decode): {verdict}")
    # At half the ceiling, everything after decoding gets as long as decoding took.
    budget = big["decode_us"] / GOAL_RATIO - big["decode_us"]
    print(f"output floor (encode + gzip of the replay's own outputs, no engine):"
          f" {big['floor_us']:.2f} us per input event; the budget after decoding for"
          f" ratio {GOAL_RATIO} is {budget:.2f} us")  # fmt: skip
    growth = results[2]["peak_rss_mb"] / results[0]["peak_rss_mb"]
    print(f"memory: same users, {results[2]['events'] / results[0]['events']:.0f}x the events:"
          f" {growth:.2f}x the sample's peak RSS")  # fmt: skip
    for (name, _), r in zip(streams, results, strict=True):
        print(f"outputs ({name}): {r['outputs']} in {r['replay_s']:.1f} s")
    if big["profile"]:
        print(big["profile"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
