"""IPS / SNIPS / DR on the Open Bandit random logs against the on-policy truth
(`backtest/ope.py`), one row per campaign log, with 95 % bootstrap intervals.

    .venv/bin/python benchmarks/ope_bench.py
"""

from __future__ import annotations

from pathlib import Path

from backtest.ope import evaluate

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "open_bandit_random"


def main() -> None:
    for campaign in ("all", "men", "women"):
        path = ROOT / campaign / f"{campaign}.csv"
        if not path.exists():
            print(f"{campaign}: {path} absent")
            continue
        r = evaluate(path)
        print(
            f"{campaign}: truth {r['truth']:.5f} ({r['truth_clicks']} clicks in "
            f"{r['truth_events']} on-policy events); logged rate {r['logged_rate']:.5f}"
        )
        for name, e in r["estimators"].items():
            lo, hi = e["ci"]
            print(
                f"  {name:6}{e['estimate']:.5f}  [{lo:.5f}, {hi:.5f}]  "
                f"relative error {e['relative_error']:.3f}"
            )


if __name__ == "__main__":
    main()
