"""Value bidding measured end to end: replay a market through the engine and read
the bidding simulation's constant / adjusted / oracle figures at equal spend.

Used by `benchmarks/bidding_bench.py` (full size, printed) and by
`tests/test_bidding_value.py` (a smaller truth stream, asserted).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from backtest.importers import run_import
from backtest.market import BidSimParams
from backtest.replay import ReplayOptions, replay
from backtest.truth import TruthParams, generate_truth, write_truth

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OPEN_BANDIT = [DATA / "open_bandit_random" / c for c in ("all", "men", "women")]


def open_bandit_missing() -> str | None:
    missing = [str(p) for p in OPEN_BANDIT if not p.is_dir()]
    return f"Open Bandit data not found: {', '.join(missing)}" if missing else None


def truth_run(params: TruthParams, work: Path, partitions: int = 4) -> dict[str, Any]:
    """Replay the known-model market `params` (its budgets on the `campaigns` topic)."""
    stream = generate_truth(params)
    tag = (
        f"truth-{params.objective}-{params.budget_fraction:g}-{params.n_users}-{params.days}"
        f"-{params.seed}"
    )
    events, truth_path = work / f"{tag}.jsonl.gz", work / f"{tag}.json"
    write_truth(stream, events, truth_path)
    truth = {i: (pc, stream.p_conversion[i]) for i, pc in stream.p_click.items()}
    opts = ReplayOptions(partitions=partitions, truth=truth)
    report = replay([events], work / tag, opts)
    name = f"truth {params.objective} 1/{round(1 / params.budget_fraction)}"
    return summarise(name, report)


def open_bandit_run(work: Path, budget_fraction: float, partitions: int = 4) -> dict[str, Any]:
    """Replay Open Bandit (all, men, women); budgets = fraction x price per day."""
    events = work / "open_bandit.jsonl.gz"
    if not events.exists():
        run_import("open-bandit", [str(p) for p in OPEN_BANDIT], str(events))
    opts = ReplayOptions(
        partitions=partitions, bidsim=replace(BidSimParams(), budget_fraction=budget_fraction)
    )
    report = replay([events], work / f"obd-{budget_fraction:g}", opts)
    return summarise(f"open bandit 1/{round(1 / budget_fraction)}", report)


def summarise(name: str, report: dict[str, Any]) -> dict[str, Any]:
    b = report["bidding"]
    row: dict[str, Any] = {"dataset": name, "click_auc": report["models"]["click"]["auc"]}
    for who in ("baseline", "policy", "policy_stream", "oracle", "oracle_value", "closed_loop"):
        r = b.get(who)
        if r is None:
            continue
        row[who] = {
            k: r[k]
            for k in (
                "spend",
                "won",
                "clicks",
                "conversions",
                "expected_clicks",
                "expected_conversions",
            )
        }
        row[who]["pacing"] = r["pacing"]
    row["gain_captured"] = b.get("gain_captured")
    row["equal_spend"] = b["equal_spend"]
    row["scale"] = b["policy"]["equal_spend_scale"]
    row["market_price"] = b["market_price"]["name"]
    row["budgets"] = b["budgets"]["source"]
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'dataset':<22} {'policy':<14} {'spend':>10} {'clicks':>7} {'E[clicks]':>10}"
        f" {'conv':>5} {'E[conv]':>8} {'end err':>8} {'curve err':>9}"
    ]
    for r in rows:
        for who in ("baseline", "policy", "policy_stream", "oracle", "oracle_value", "closed_loop"):
            if who not in r:
                continue
            v = r[who]
            pace = v["pacing"]
            lines.append(
                f"{r['dataset']:<22} {who:<14} {v['spend']:>10.2f} {v['clicks']:>7}"
                f" {v['expected_clicks']:>10.1f} {v['conversions']:>5}"
                f" {v['expected_conversions']:>8.1f} {pace['end_error_mean']:>8.4f}"
                f" {pace['curve_error_mean']:>9.4f}"
            )
        g = r["gain_captured"]
        extra = f"  gain captured {g}" if g else ""
        lines.append(
            f"{'':<22} click AUC {r['click_auc']:.4f}  equal spend {r['equal_spend']}"
            f"  prices {r['market_price']}  budgets {r['budgets']}{extra}"
        )
    return "\n".join(lines)
