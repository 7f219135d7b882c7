"""`ecom-stream replay`, `split-sessions` and `truth-stream`: the offline commands.

They read files and the ECOM_DOMAIN_* variables only, never Kafka (`ecom-stream
produce` lives in ecom_cli); every path is checked before work starts.

>>> import argparse
>>> parser = argparse.ArgumentParser(prog="ecom-stream")
>>> add_backtest_parsers(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["replay", "a.jsonl", "--report", "out", "--limit", "5"])
>>> args.files, args.report, args.partitions, args.limit, args.quiet
(['a.jsonl'], 'out', 4, 5, False)
>>> t = parser.parse_args(["truth-stream", "-o", "e.jsonl.gz", "--truth", "t.json", "--days", "2"])
>>> t.output, t.truth, t.days, t.users
('e.jsonl.gz', 't.json', 2, None)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from backtest.argtypes import non_negative_int, positive_int
from backtest.inputs import NothingValid, check_input_files, check_output_file, check_output_folder
from backtest.progress import counts_text, progress_enabled


def add_backtest_parsers(sub: Any) -> None:
    rp = sub.add_parser(
        "replay",
        help="replay event files through the engine offline",
        description="Replay JSON Lines event files (merged in event time) "
        "through the live engine; write outputs.jsonl.gz, report.json and "
        "report.html to the report folder. The engine honours the same ECOM_DOMAIN_<FIELD> "
        "environment variables as the worker (e.g. ECOM_DOMAIN_TOP_K=20, "
        "ECOM_DOMAIN_KNOWLEDGE_DELAY_MS=60000; fields of online_models/config.py); "
        "--partitions, --top-k and --knowledge-delay-ms override them. "
        "See docs/backtesting.md.",
    )
    rp.add_argument("files", nargs="+", metavar="FILE", help=".jsonl or .jsonl.gz input files")
    rp.add_argument("--report", required=True, metavar="OUT", help="output folder")
    rp.add_argument(
        "--partitions",
        type=positive_int,
        default=4,
        help="engines to run, as live partitions (default 4)",
    )
    rp.add_argument(
        "--top-k",
        type=positive_int,
        default=None,
        help="recommendation length written to outputs (default: ECOM_DOMAIN_TOP_K or 10)",
    )
    rp.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        metavar="N",
        help="stop after N input lines (default: read every line)",
    )
    rp.add_argument(
        "--knowledge-delay-ms",
        type=non_negative_int,
        default=None,
        metavar="MS",
        help="event time before a partition's knowledge updates (item transitions, labels, "
        "spend) become visible to all partitions (default: ECOM_DOMAIN_KNOWLEDGE_DELAY_MS or 0)",
    )
    rp.add_argument(
        "--per-partition-knowledge",
        action="store_true",
        help="give each partition its own knowledge instead of one shared (for comparison)",
    )
    rp.add_argument(
        "--evaluate-from",
        type=int,
        default=None,
        metavar="TS",
        help="judge next-item positions only from this event time (ms), e.g. the split time "
        "of split-sessions, so the training part is not scored (default: judge all)",
    )
    rp.add_argument(
        "--every-position",
        dest="emitted_only",
        action="store_false",
        default=False,
        help="at every position the user holds the list the engine serves right then "
        "(the default, the field's next-item protocol)",
    )
    rp.add_argument(
        "--emitted-only",
        dest="emitted_only",
        action="store_true",
        default=False,
        help="the user holds only the recommendations the engine emitted (rate-limited, "
        "as live); every position is still judged, one without a list is a miss",
    )
    rp.add_argument("--quiet", action="store_true", help="no progress bar")
    rp.add_argument("--no-html", action="store_true", help="skip report.html")
    rp.set_defaults(func=_replay)
    sp = sub.add_parser(
        "split-sessions",
        help="split a session click log by time (last day = test)",
        description="Split a session-rec click log (SessionId, ItemId, Time; e.g. YOOCHOOSE) "
        "into OUT/train.txt and OUT/test.txt: sessions ending in the last --test-days are "
        "test sessions; test clicks on items unseen in training and test sessions left "
        "shorter than 2 are dropped. OUT/split.json holds the split time (ms) to pass "
        "to `replay --evaluate-from`. Import both with `import yoochoose`.",
    )
    sp.add_argument("source", metavar="SOURCE", help="tab-separated click log (.gz or plain)")
    sp.add_argument("--out", required=True, metavar="OUT", help="folder for the split files")
    sp.add_argument(
        "--test-days",
        type=float,
        default=1.0,
        metavar="DAYS",
        help="sessions ending in the last DAYS of the log are test sessions",
    )
    sp.set_defaults(func=_split)
    tp = sub.add_parser(
        "truth-stream",
        help="write the known-model market (events + true probabilities)",
        description="Write a synthetic market whose clicks and conversions follow a "
        "known logistic model (backtest/truth.py): the events as the replay reads them "
        "(campaigns with their budgets first) and, in --truth, each impression's true "
        "P(click) and P(conversion | click) and the campaign budgets. Replay the events "
        "and compare what the engine learned with the truth; see docs/backtesting.md.",
    )
    tp.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="EVENTS",
        help="events file to write (.jsonl or .jsonl.gz)",
    )
    tp.add_argument(
        "--truth",
        required=True,
        metavar="JSON",
        help="JSON file to write the true probabilities and budgets to",
    )
    tp.add_argument(
        "--users", type=positive_int, default=None, help="simulated users (default 3000)"
    )
    tp.add_argument(
        "--days", type=positive_int, default=None, help="days of event time (default 4)"
    )
    tp.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed: the same seed writes the same bytes (default 1)",
    )
    tp.add_argument(
        "--promotions",
        action="store_true",
        help="also run the known-truth promotions market (backtest/promo_truth.py: four "
        "groups, uplift learned on seed, scored on seed + 1) and add its Qini report to "
        "the truth JSON as `promotions`; its events (offer, exposures, orders) go to "
        "--promotions-output for the replay",
    )
    tp.add_argument(
        "--promotions-output",
        default=None,
        metavar="EVENTS",
        help="promotions events file (default: beside --output, named promotions.jsonl.gz)",
    )
    tp.set_defaults(func=_truth_stream)


def _replay(args: argparse.Namespace) -> int:
    from backtest.replay import ReplayOptions, replay
    from online_models.config import domain_overrides
    from online_models.pseudonyms import replay_privacy

    domain = domain_overrides(os.environ)  # ConfigError: one line per problem, exit 2
    privacy = replay_privacy(os.environ)  # ECOM_PSEUDONYMIZE as the worker reads it
    check_input_files(args.files)
    check_output_folder(args.report)
    options = ReplayOptions(
        partitions=args.partitions,
        top_k=args.top_k,
        limit=args.limit,
        progress=progress_enabled(sys.stderr, args.quiet),
        domain=domain,
        knowledge_delay_ms=args.knowledge_delay_ms,
        shared=not args.per_partition_knowledge,
        evaluate_from=args.evaluate_from,
        every_position=not args.emitted_only,
        privacy=privacy,
    )
    report = replay(args.files, args.report, options)
    counts = report["counts"]
    if not sum(counts["events_by_topic"].values()):
        invalid = counts["invalid_by_reason"]
        why = (
            f"{sum(invalid.values()):,} invalid lines ({counts_text(invalid)})"
            if invalid
            else "no lines"
        )
        raise NothingValid(f"no valid events in {', '.join(args.files)}: {why}")
    if not args.no_html:
        from backtest.html_report import write_html

        write_html(Path(args.report) / "report.html", report)
    print(replay_summary(report, args.report))
    return 0


def replay_summary(report: dict[str, Any], out: str) -> str:
    """The final line of a replay: its headline figures, in words.

    >>> print(replay_summary({"counts": {"events_by_topic": {"clickstream": 1200, "orders":
    ...     34}, "invalid_by_reason": {"not_json": 2}, "outputs_by_topic": {"recommendations":
    ...     900}}, "performance": {"seconds": 2.0, "events_per_second": 617.0}}, "out"))
    ... # doctest: +NORMALIZE_WHITESPACE
    replayed 1,234 events in 2.0s (617/s): 900 recommendations, 0 bid adjustments;
    2 invalid lines (not_json 2) -> out
    """
    counts, perf = report["counts"], report["performance"]
    events = sum(counts["events_by_topic"].values())
    outputs, invalid = counts["outputs_by_topic"], counts["invalid_by_reason"]
    bad = sum(invalid.values())
    return (
        f"replayed {events:,} events in {perf['seconds']:.1f}s "
        f"({perf['events_per_second']:,.0f}/s): {outputs.get('recommendations', 0):,} "
        f"recommendations, {outputs.get('bid-adjustments', 0):,} bid adjustments; "
        f"{bad:,} invalid lines" + (f" ({counts_text(invalid)})" if bad else "") + f" -> {out}"
    )


def _truth_stream(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from backtest.truth import TruthParams, generate_truth, write_truth

    params = TruthParams()
    given = {"n_users": args.users, "days": args.days, "seed": args.seed}
    params = replace(params, **{k: v for k, v in given.items() if v is not None})
    check_output_file(args.output)
    check_output_file(args.truth)
    stream = generate_truth(params)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.truth).parent.mkdir(parents=True, exist_ok=True)
    write_truth(stream, args.output, args.truth)
    n = sum(1 for _ in stream.impressions())
    print(
        f"wrote {len(stream.events)} events ({n} impressions, {len(stream.budgets)} "
        f"campaigns) -> {args.output}; truth -> {args.truth}"
    )
    if args.promotions:
        _add_promotions(args.truth, params.seed)
        target = args.promotions_output or str(Path(args.output).parent / "promotions.jsonl.gz")
        _write_promotions(target, params.seed)
    return 0


def _write_promotions(path: str, seed: int) -> None:
    from backtest.jsonl import write_events
    from backtest.promo_market import market_events

    check_output_file(path)
    n = write_events(path, market_events(seed, seed + 1))
    print(f"promotions: wrote {n} events (offer, exposures, orders) -> {path}")


def _add_promotions(truth_path: str, seed: int) -> None:
    import json

    from backtest.promo_truth import evaluate

    promo = evaluate(train_seed=seed, test_seed=seed + 1)
    path = Path(truth_path)
    truth = json.loads(path.read_text())
    truth["promotions"] = promo
    path.write_text(json.dumps(truth))
    print(
        f"promotions: qini.captured {promo['qini']['captured']:.3f}, "
        f"vs_response_model {promo['vs_response_model']}"
    )


def _split(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from backtest.split import split_sessions

    check_input_files([args.source])
    check_output_folder(args.out)
    stats = split_sessions(args.source, args.out, args.test_days)  # NothingValid: exit 1
    for key, value in asdict(stats).items():
        print(f"{key:<24}{value}")
    return 0
