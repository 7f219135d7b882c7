"""Offline replay: input files -> the live engine -> outputs.jsonl.gz + report.json
(+ dead-letters.jsonl.gz: every invalid line as the worker's dead-letter record).

Files are merged in event time on (ts, file index, line number), so ties keep a
stable order. Each line is decoded by the live decoder; lines it rejects are counted
by reason, as the live dead-letter topic would count them. Campaign lines (no `ts`)
take the time of the line before them in their file, so a campaigns file without
times applies before every event.

Every partition engine reads and feeds one shared knowledge (`ReplayOptions.shared`),
whose updates become visible `knowledge_delay_ms` of event time late. The engine's
hyperparameters are EngineConfig's defaults with the `ECOM_DOMAIN_*` overrides of the
worker (`ReplayOptions.domain`, read from the environment by the CLI), then
`partitions`, `top_k` and `knowledge_delay_ms` from the options.

Next-item evaluation (`backtest.nextitem`): every item event from `evaluate_from` on is
a position, judged by the user's next item event against the list the user holds
then; with `every_position` (the default) that is the list the engine serves right
after the event (`recommend_now`, no rate limit, timed for `performance.recommend_us`
and `recommend_cpu_us`),
otherwise the latest recommendation the engine emitted. A position without a list is
a miss. The baseline is the popularity (trending) list at the position.

The engine runs with top_k = max(top_k, 20) so next-item quality can be read @20;
recommendations are cut back to `top_k` before they are written. A top-k list is a
prefix of the longer one (stable nlargest), so outputs are byte-identical to a run
with `top_k` itself; only the recommender's coverage counter differs.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from backtest.bidbook import BidBook
from backtest.bidsim import DAY_MS, simulate
from backtest.event_files import merged
from backtest.market import (
    BidSimParams,
    Impression,
    Order,
    budgets_from_prices,
    constant_bids,
    lognormal_price,
)
from backtest.nextitem import CUTOFFS, NextItemEval
from backtest.progress import Progress
from backtest.promo_report import PROMO_TOPICS, PromoReplay
from backtest.report import ScoreTimeline, model_section, write_report
from online_models.config import HOUR_MS, EngineConfig
from online_models.dead_letters import dead_letter
from online_models.decode import CAMPAIGNS
from online_models.erasure import ERASURE
from online_models.events import AdImpression, Campaign, ClickEvent, OrderEvent
from online_models.outputs import Output, Recommendation, encode_lines
from online_models.pipeline import Limits
from online_models.promotions.offers import PromotionDecision
from online_models.pseudonyms import Privacy
from online_models.runner import Runner

EVAL_K = max(CUTOFFS)


@dataclass(frozen=True)
class ReplayOptions:
    partitions: int = 4
    top_k: int | None = None  # None: the engine default
    limit: int | None = None  # stop after this many merged input lines
    progress: bool = False
    bucket_ms: int = HOUR_MS
    bidsim: BidSimParams = field(default_factory=BidSimParams)
    domain: dict[str, Any] = field(default_factory=dict)  # ECOM_DOMAIN_* overrides
    knowledge_delay_ms: int | None = None  # None: the engine config's (default 0)
    shared: bool = True  # False: one knowledge per partition (as before it was shared)
    evaluate_from: int | None = None  # next-item positions before this ts are not judged
    # True: at every position the user is served the engine's list right then (no rate
    # limit; the field's protocol). False: the user holds only emitted recommendations.
    every_position: bool = True
    # True click / conversion probability per impression id (backtest/truth.py): the
    # bidding simulation then adds the oracle and expected clicks.
    truth: dict[str, tuple[float, float]] | None = None
    # False: the engine is charged every impression's logged cost, as a live worker fed
    # an ad server's log is, instead of only the simulated policy's wins (parity tests).
    closed_loop: bool = True
    # Decode limits: the worker's (ECOM_MAX_MESSAGE_BYTES, ECOM_MAX_NESTING_DEPTH).
    limits: Limits = field(default_factory=Limits)
    # Pseudonyms and dead-letter privacy (ECOM_PSEUDONYMIZE...; online_models/pseudonyms.py).
    privacy: Privacy = field(default_factory=Privacy)


def engine_config(opts: ReplayOptions) -> EngineConfig:
    """The worker's config builder (`EngineConfig.for_run`), with the replay's options;
    top_k at least EVAL_K, so that next-item quality can be read @20."""
    top_k = EngineConfig.for_run(opts.partitions, opts.domain, top_k=opts.top_k).top_k
    return EngineConfig.for_run(
        opts.partitions,
        opts.domain,
        top_k=max(top_k, EVAL_K),
        knowledge_delay_ms=opts.knowledge_delay_ms,
    )


@contextlib.contextmanager
def _rare_gc() -> Iterator[None]:
    # Engine state grows to millions of long-lived containers; with the default gen-0
    # threshold (700) the cyclic GC rescans them constantly. The replay creates no
    # cycles worth collecting early, so collect less often and restore afterwards.
    before = gc.get_threshold()
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*before)


class BidPlan:
    """What the replay's bidder knows before the first event (a first pass over the
    inputs): each campaign's daily budget (its `campaigns` event, else
    `budget_fraction` x its market price per day, then handed to the engine as a
    campaign), and the constant bid of each campaign-day that spends at most that
    budget, in hindsight, which is both the baseline and the adjusted policy's base."""

    def __init__(self, paths: Sequence[str | Path], p: BidSimParams) -> None:
        self.params = p
        campaigns: dict[str, Campaign] = {}
        prices: dict[tuple[str, int], list[float]] = {}
        for _, _, _, _, topic, ev in merged(paths, Counter(), Counter()):
            if topic == CAMPAIGNS:
                campaigns.setdefault(ev.campaign_id, ev)
            elif isinstance(ev, AdImpression):
                key = (ev.campaign_id, ev.ts // DAY_MS)
                prices.setdefault(key, []).append(self.price(ev))
        derived = budgets_from_prices({k: sum(v) for k, v in prices.items()}, p.budget_fraction)
        self.from_events = sorted(c for c in derived if c in campaigns)
        self.handed = {c: b for c, b in derived.items() if c not in campaigns}
        self.budgets = {**derived, **{c: campaigns[c].daily_budget for c in campaigns}}
        self.constant = constant_bids(prices, self.budgets)
        self.spent: dict[tuple[str, int], float] = {}

    def price(self, ev: AdImpression) -> float:
        return ev.cost if ev.cost > 0 else lognormal_price(ev.impression_id, self.params)

    def source(self) -> str:
        if self.handed and self.from_events:
            return "campaign_events+budget_fraction"
        return "budget_fraction" if self.handed else "campaign_events"

    def bid(self, ev: AdImpression, multiplier: float) -> tuple[bool, float]:
        """(won, price) of the adjusted policy's bid = constant bid x multiplier."""
        key = (ev.campaign_id, ev.ts // DAY_MS)
        price = self.price(ev)
        spent = self.spent.get(key, 0.0)
        bid = self.constant.get(key, 0.0) * multiplier
        won = bid >= price and spent + price <= self.budgets.get(ev.campaign_id, 0.0) + 1e-12
        if won:
            self.spent[key] = spent + price
        return won, price


def replay(
    paths: Sequence[str | Path], out_dir: str | Path, options: ReplayOptions | None = None
) -> dict[str, Any]:
    """Replay `paths`; write outputs.jsonl.gz and report.json to `out_dir`; return the report."""
    with _rare_gc():
        return _replay(paths, out_dir, options)


def _replay(
    paths: Sequence[str | Path], out_dir: str | Path, options: ReplayOptions | None
) -> dict[str, Any]:
    opts = options or ReplayOptions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "erasure-confirmations.jsonl").unlink(missing_ok=True)  # appended per request
    cfg = engine_config(opts)
    top_k = EngineConfig.for_run(opts.partitions, opts.domain, top_k=opts.top_k).top_k
    runner = Runner(cfg, shared=opts.shared, limits=opts.limits, privacy=opts.privacy)
    engines = runner.engines
    knowledges = runner.knowledges
    # Wall time of each timed recommendation, and the thread's CPU time (what the call
    # cost without the waits a shared machine adds).
    rec_ns: list[int] = []
    rec_cpu_ns: list[int] = []
    perf_ns, cpu_ns = time.perf_counter_ns, time.thread_time_ns
    judge_from = opts.evaluate_from if opts.evaluate_from is not None else -(2**63)
    invalid: Counter[str] = Counter()
    disorder: Counter[str] = Counter()
    by_topic: Counter[str] = Counter()
    out_topics: Counter[str] = Counter()
    recs = NextItemEval(opts.bucket_ms)
    timeline = ScoreTimeline(opts.bucket_ms)
    book = BidBook()
    imps: list[Impression] = []
    clicks: list[tuple[str, str, int]] = []
    orders: list[Order] = []
    plan = BidPlan(paths, opts.bidsim)
    promo = PromoReplay(opts.evaluate_from)  # issue 22: promotions, when the input has them
    for cid, budget in plan.handed.items():  # one budget: the engine paces the sim's
        runner.set_campaign(Campaign(campaign_id=cid, daily_budget=budget))
    won_log: list[bool] = []
    progress = Progress("replay", paths, opts.progress)
    first_ts = last_ts = None
    labels = 0
    started = time.perf_counter()
    tmp = out / "outputs.jsonl.gz.tmp"
    with (
        open(tmp, "wb") as raw,
        # Level 1: compressing at 6 cost more than the rest of the output path.
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0) as sink,
        open(out / "dead-letters.jsonl.gz", "wb") as dead_raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=dead_raw, mtime=0) as dead_sink,
    ):
        chunk: list[Output | PromotionDecision] = []

        def refused(path: str, number: int, line: bytes, reason: str, detail: str) -> None:
            # The worker's dead-letter record: source = the file, offset = the line.
            value, _ = dead_letter(path, 0, number, None, line, reason, detail, opts.privacy)
            dead_sink.write(value + b"\n")

        lines = merged(paths, invalid, disorder, runner.pipeline.limits, refused, opts.privacy)
        for n, (ts, _, _, _, topic, ev) in enumerate(lines):
            if opts.limit is not None and n >= opts.limit:
                break
            by_topic[topic] += 1
            if topic in PROMO_TOPICS:
                for decision in promo.feed(topic, ev):
                    out_topics[decision.TOPIC] += 1
                    chunk.append(decision)
                continue
            if topic in (CAMPAIGNS, ERASURE):
                done = runner.feed(topic, ev)  # the same step as the worker's records
                if topic == ERASURE:  # the worker's erasure-confirmations records
                    with open(out / "erasure-confirmations.jsonl", "ab") as confirmations:
                        confirmations.writelines(e.value + b"\n" for e in done.emissions)
                continue
            if first_ts is None:
                first_ts = ts
            last_ts = ts
            timeline.tick(ts, knowledges)
            user = ev.user_id
            position = False  # an item event: the next one judges what follows it
            if isinstance(ev, ClickEvent):
                if ev.item_id is not None:
                    recs.observe(user, ts, (ev.item_id,))
                    position = True
                if ev.type == "ad_click" and ev.impression_id is not None:
                    clicks.append((ev.impression_id, user, ts))
            elif isinstance(ev, OrderEvent):
                if ev.status == "placed":
                    recs.observe(user, ts, [i.item_id for i in ev.items])
                    position = True
                    orders.append(Order(ts, user, float(ev.total or 0.0)))
                    promo.order(user, ts)
            elif isinstance(ev, AdImpression):
                # The impression is a bid request: the engine quotes its multiplier, the
                # bidder wins or loses the auction, and the engine counts as spend only
                # what was won (a lost auction costs nothing), so its pacer paces the
                # policy's spend, not the log's.
                engine = engines[runner.partition(user)]
                state = runner.states[runner.partition(user)].get(user)
                mult = engine.quote(state, ev)
                won, price = plan.bid(ev, mult)
                won_log.append(won)
                stream = book.multiplier(user, ev.campaign_id, ts)
                imps.append(
                    Impression(
                        ts, ev.impression_id, user, ev.campaign_id, ev.bid, ev.cost, mult, stream
                    )
                )
                paid = price if won else 0.0
                if opts.closed_loop and paid != ev.cost:
                    ev = msgspec.structs.replace(ev, cost=paid)
            result = runner.feed(topic, ev)
            labels += result.labels
            for gone in result.expired:
                recs.forget(gone)
            judged = position and ts >= judge_from
            if judged and opts.every_position and result.state is not None:
                engine = engines[runner.partition(user)]
                current = ev.item_id if isinstance(ev, ClickEvent) else None
                t0, c0 = perf_ns(), cpu_ns()
                served, _ = engine.recommend_now(result.state, ts, current)
                rec_ns.append(perf_ns() - t0)
                rec_cpu_ns.append(cpu_ns() - c0)
                recs.serve(user, [i.item_id for i in served])
            for output in result.outputs:
                if isinstance(output, Recommendation):  # evaluation reads items; not routing
                    if not opts.every_position:
                        recs.serve(user, [i.item_id for i in output.items])
                    if len(output.items) > top_k:
                        output = msgspec.structs.replace(output, items=output.items[:top_k])
                else:
                    book.record(output)
                out_topics[output.TOPIC] += 1
                chunk.append(output)
            if judged:
                recs.position(
                    user, ts, engines[runner.partition(user)].knowledge.trending_items(EVAL_K)
                )
            if len(chunk) >= 4096:
                sink.write(encode_lines(chunk))
                chunk.clear()
            if not n & 0x3FF:
                progress.update(n, ts)
        if chunk:
            sink.write(encode_lines(chunk))
    tmp.replace(out / "outputs.jsonl.gz")
    progress.close()
    seconds = time.perf_counter() - started
    events = sum(v for k, v in by_topic.items() if k != CAMPAIGNS)
    report: dict[str, Any] = {
        "schema_version": 1,
        "inputs": [str(p) for p in paths],
        "settings": {
            "partitions": opts.partitions,
            "top_k": top_k,
            "engine_top_k": cfg.top_k,
            "knowledge": "shared" if opts.shared else "per_partition",
            "knowledge_delay_ms": cfg.knowledge_delay_ms,
            "domain_overrides": dict(sorted(opts.domain.items())),
            "evaluate_from": opts.evaluate_from,
            "every_position": opts.every_position,
            "lists_judged": "served at every position" if opts.every_position else "emitted",
            "limit": opts.limit,
            "bucket_ms": opts.bucket_ms,
        },
        "counts": {
            "events_by_topic": dict(sorted(by_topic.items())),
            "invalid_by_reason": dict(sorted(invalid.items())),
            "out_of_order_by_file": dict(sorted(disorder.items())),
            "outputs_by_topic": dict(sorted(out_topics.items())),
            "labels": labels,
            "attribution": _attribution_counters(runner),
            "active_users": runner.active_users(),
        },
        "window": {"first_ts": first_ts, "last_ts": last_ts},
        "models": model_section(knowledges, timeline, last_ts or 0),
        "recommendations": recs.summary(),
        "bidding": simulate(
            imps,
            clicks,
            orders,
            opts.bidsim,
            budgets=plan.budgets,
            truth=opts.truth,
            closed_loop=won_log,
            budget_source=plan.source(),
        ),
        "performance": {
            "seconds": round(seconds, 3),
            "events_per_second": round(events / seconds, 1) if seconds > 0 else 0.0,
            "peak_memory_mb": round(peak_rss_mb(), 1),
            "recommend_us": cost_summary(rec_ns),
            "recommend_cpu_us": cost_summary(rec_cpu_ns),
        },
    }
    if promo.active:
        report["promotions"] = promo.section()
    write_report(out / "report.json", report)
    return report


def cost_summary(ns: list[int]) -> dict[str, float | int | None]:
    """Median and p99 (microseconds) of the timed `recommend_now` calls.

    >>> cost_summary([1_000, 2_000, 3_000, 100_000])
    {'n': 4, 'median': 2.5, 'p99': 97.09}
    >>> cost_summary([])
    {'n': 0, 'median': None, 'p99': None}
    """
    if not ns:
        return {"n": 0, "median": None, "p99": None}
    xs = sorted(ns)
    n = len(xs)

    def quantile(q: float) -> float:
        pos = q * (n - 1)
        lo = int(pos)
        hi = min(lo + 1, n - 1)
        return (xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)) / 1000.0

    return {"n": n, "median": round(quantile(0.5), 2), "p99": round(quantile(0.99), 2)}


def _attribution_counters(runner: Runner) -> dict[str, int]:
    total: Counter[str] = Counter()
    for engine in runner.engines:
        total.update(engine.attribution.counters)
    return dict(sorted(total.items()))


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024
