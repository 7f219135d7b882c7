"""Crash benchmark: two workers, SIGKILLs, joins and leaves, pauses past the session, on
real events; are the stored profiles those of one offline pass, and how long are the
gaps?

Starts the embedded broker, creates the topics (4 partitions), starts two worker
processes (`python -m ecom_cli worker`) and produces the real events of
benchmarks/crash_events.py (~140k: Taobao clicks and orders, Open Bandit impressions
moved into the same window) at a steady rate while it
  1. SIGKILLs a random worker `--kills` times and restarts it at once (as Kubernetes
     would), the next kill a few seconds after the restarted worker processes again,
  2. pauses a worker (SIGSTOP) past its session timeout `--pauses` times, then resumes
     it: a worker fenced out of the group that comes back,
  3. stops and starts the second worker `--cycles` times (leaves and joins).
Each worker's /metrics and /readyz are sampled every 0.5 s. When everything is
produced and read, it prints:
  - restart to processing: from a worker process's start to its first processed record
    (median, p95, max; goal p95 <= 20 s), and to its first ready /readyz;
  - the /readyz reasons seen, and how often `broker_unreachable` was said while the
    broker answered (goal: never);
  - the longest group-wide stall: no worker processed anything while records waited
    (goal: no longer than the session timeout);
  - writes of a paused worker after it resumed under its old group generation (the
    `ecom-generation` header of its outputs; goal: none);
  - every stored profile (the users changelog, last value per user) against the
    offline pass (goal: all equal), and /profiles for a sample while workers serve;
  - output ids that repeat, and those whose copies differ (README: same id, first copy
    wins; the copies of an id must agree on the record they stand for).

    .venv/bin/python benchmarks/crash_bench.py              # the benchmark
    .venv/bin/python benchmarks/crash_bench.py --limit 20000 --kills 3 --cycles 2 --pauses 1
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from crash_checks import check_outputs, check_profiles, paused_writes  # noqa: E402
from crash_events import real_events, reference  # noqa: E402
from crash_fleet import Feeder, Fleet  # noqa: E402

from streams.broker import EmbeddedBroker, free_port  # noqa: E402

RUN_DIR = ROOT / ".run" / "crash-bench"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))] if ordered else 0.0


def chaos(
    fleet: Fleet, feeder: Feeder, args: argparse.Namespace, rng: random.Random
) -> list[tuple[int, int, int]]:
    """The schedule; returns (pid, group generation before, wall ms of the resume) of
    each pause."""
    resumes: list[tuple[int, int, int]] = []
    for i in range(args.kills):
        time.sleep(rng.uniform(4, 9))
        victim = rng.choice(["a", "b"])
        fleet.act(f"kill {i + 1}/{args.kills}: SIGKILL worker {victim}")
        fleet.kill(victim)
        fleet.start(victim)
        # The next crash once the group has settled: crashes seconds apart keep an eager
        # group rebalancing without end (each costs two rebalances: the new process's
        # join and the dead member's expiry).
        fleet.wait_processing(victim, timeout_s=120, idle=feeder.done)
    for i in range(args.pauses):
        time.sleep(rng.uniform(4, 9))
        victim = rng.choice(["a", "b"])
        pause = args.session_timeout_s * 1.5 + 2
        fleet.act(f"pause {i + 1}/{args.pauses}: SIGSTOP {victim} {pause:.0f} s")
        pid, generation = fleet.pause_facts(victim)
        fleet.pause(victim)
        time.sleep(pause)
        fleet.resume(victim)
        fleet.act(f"pause {i + 1}/{args.pauses}: SIGCONT {victim}")
        resumes.append((pid, generation, fleet.wall_of(time.monotonic())))
    for i in range(args.cycles):
        time.sleep(rng.uniform(3, 6))
        fleet.act(f"cycle {i + 1}/{args.cycles}: worker b leaves")
        fleet.stop("b")
        time.sleep(rng.uniform(2, 5))
        fleet.act(f"cycle {i + 1}/{args.cycles}: worker b joins")
        fleet.start("b")
        fleet.wait_processing("b", timeout_s=120, idle=feeder.done)
    return resumes


def summary(fleet: Fleet, args: argparse.Namespace) -> dict[str, Any]:
    lives = [life for life in fleet.lives if not life.paused_before_processing]
    restarts = [life.first_processed - life.started for life in lives if life.first_processed]
    ready = [life.ready_at - life.started for life in lives if life.ready_at]
    reasons: Counter[str] = Counter()
    for life in fleet.lives:
        reasons.update(life.reasons)
    false_broker = sum(n for r, n in reasons.items() if r.startswith("broker_unreachable"))
    never = [life.name for life in fleet.lives if life.first_processed is None and life.ended]
    return {
        "starts": len(fleet.lives),
        "restart_to_processing_s": {
            "median": round(statistics.median(restarts), 1) if restarts else None,
            "p95": round(pct(restarts, 0.95), 1),
            "max": round(max(restarts, default=0.0), 1),
            "goal_p95": 20.0,
        },
        "restart_to_ready_s": {
            "median": round(statistics.median(ready), 1) if ready else None,
            "p95": round(pct(ready, 0.95), 1),
            "ready_in": f"{len(ready)} of {len(fleet.lives)} starts",
        },
        "lives_that_never_processed": len(never),
        "readyz_reasons": dict(reasons.most_common()),
        "broker_unreachable_said_while_broker_up": false_broker,
        "longest_stall_s": round(fleet.longest_stall(), 1),
        "longest_stalls": [
            {"s": length, "at_s": at, "after": what} for length, at, what in fleet.stalls()
        ],
        "stall_goal_s": args.session_timeout_s,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--pauses", type=int, default=2)
    p.add_argument("--cycles", type=int, default=12, help="leave/join cycles of worker b")
    p.add_argument("--rate", type=float, default=0.0, help="events/s (0: spread over the chaos)")
    p.add_argument("--limit", type=int, default=0, help="first N events only (0: all)")
    p.add_argument("--session-timeout-s", type=float, default=10.0)
    p.add_argument(
        "--rebalance-timeout-s",
        type=float,
        default=0.0,
        help="how long a rebalance waits for members to rejoin (0: the session timeout)",
    )
    p.add_argument("--seed", type=int, default=18)
    p.add_argument(
        "--partitioner",
        default="murmur2_random",
        help="the producer's (librdkafka); consistent_random places records as Java "
        "clients do not, so the workers repartition them (the copies' path under crashes)",
    )
    p.add_argument("--run-dir", type=Path, default=RUN_DIR)
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument(
        "--static", action="store_true", help="static group membership (ECOM_GROUP_INSTANCE_ID)"
    )
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    run_dir = args.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    events = real_events()
    if args.limit:
        events = events[: args.limit]
    print(f"[crash] {len(events)} events; offline reference ...", flush=True)
    expected = reference(events, 4, {})
    broker = EmbeddedBroker(free_port(), run_dir / "broker.log")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "ECOM_PARTITIONS": "4",
        "ECOM_FETCH_END_OFFSETS": "1",  # Tansu's ListOffsets (streams/end_offsets.py)
        "ECOM_SESSION_TIMEOUT_S": str(args.session_timeout_s),
        "ECOM_REBALANCE_TIMEOUT_S": str(args.rebalance_timeout_s or args.session_timeout_s),
        "ECOM_HEARTBEAT_INTERVAL_S": "1",
        "ECOM_COMMIT_INTERVAL_S": "1",
        "ECOM_SNAPSHOT_EVERY_S": "10",
        "ECOM_APP_ID": f"ecom-crash-{int(time.time())}",
    }
    # The chaos takes about this long; the records are spread over it.
    planned_s = args.kills * 25.0 + args.pauses * (args.session_timeout_s * 1.5 + 8.5)
    planned_s += args.cycles * 30.0
    rate = args.rate or max(100.0, len(events) / max(planned_s, 1.0))
    fleet = Fleet(env, run_dir, broker.bootstrap, static=args.static)
    feeder = Feeder(broker.bootstrap, fleet.settings, events, rate, args.partitioner)
    print(f"[crash] broker {broker.bootstrap}; {rate:.0f} events/s; logs in {run_dir}")
    t0 = time.monotonic()
    try:
        fleet.create_topics()
        feeder.send_campaigns()
        fleet.start("a")
        fleet.start("b")
        fleet.wait_ready(timeout_s=120)
        feeder.start()
        fleet.wait_processing_any(timeout_s=120)
        resumes = chaos(fleet, feeder, args, rng)
        feeder.join()
        print(f"[crash] all {feeder.sent} records sent; waiting for the workers", flush=True)
        fleet.wait_caught_up(timeout_s=300, inputs_ended=feeder.finished_at)
        served = fleet.sample_profiles(expected, n=300, rng=rng)
        fleet.stop_all()
        figures = summary(fleet, args)
        figures["events"] = len(events)
        figures["elapsed_s"] = round(time.monotonic() - t0, 1)
        figures["served_profiles"] = served
        figures["profiles"] = check_profiles(broker.bootstrap, env["ECOM_APP_ID"], expected)
        figures["outputs"] = check_outputs(broker.bootstrap, fleet.settings)
        figures["paused_worker_writes_after_resume"] = paused_writes(
            broker.bootstrap, fleet.settings, resumes
        )
    finally:
        feeder.stop()
        fleet.stop_all()
        broker.stop()
    print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    if args.json:
        args.json.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    ok = (
        figures["profiles"]["wrong"] == 0
        and figures["profiles"]["missing"] == 0
        and figures["outputs"]["identity_conflicts"] == 0
        and figures["broker_unreachable_said_while_broker_up"] == 0
        and figures["paused_worker_writes_after_resume"] == 0
        and figures["restart_to_processing_s"]["p95"] <= 20.0
        and figures["longest_stall_s"] <= args.session_timeout_s
    )
    print("PASS" if ok else "FAIL (see the figures above)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
