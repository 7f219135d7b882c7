"""Per-event cost and memory under impressions of campaign ids never announced on the
campaigns topic (issue 17), side by side in one run: the same 40,000 impressions of
three real campaigns, with 0, 5,000, 20,000 and 50,000 rogue ids mixed in.

    .venv/bin/python benchmarks/rogue_campaigns_bench.py

Before the bound, 5,000 / 20,000 / 40,000 rogue ids cost 3.9 / 10.6 / 5.3 ms per event
(every unknown id got a pacer that was re-planned every minute of event time); now
the held ones are capped (`max_unknown_campaigns`) and the rest are refused at once.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backtest.synthetic import campaigns
from online_models.config import EngineConfig
from online_models.engine import PartitionEngine
from online_models.events import AdImpression, Campaign
from online_models.knowledge import SharedKnowledge
from online_models.state import UserState

REAL = 40_000
START = 1_700_000_000_000


def run(rogue_ids: int, trace: bool) -> tuple[float, float, int, int]:
    """(us per event of the real impressions, us per rogue one, peak traced KB (with
    `trace`: tracemalloc slows every allocation, so timings come from a run without),
    campaigns the pacer holds)."""
    cfg = EngineConfig(partitions=1)
    k = SharedKnowledge(cfg, {})
    for c in campaigns(3):
        k.set_campaign(msgspec.convert(c, Campaign))
    engine = PartitionEngine(cfg, 0, k.campaigns, k)
    states: dict[str, UserState] = {}
    total = REAL + rogue_ids
    every = total // rogue_ids if rogue_ids else 0
    real_s = rogue_s = 0.0
    gc.collect()
    if trace:
        tracemalloc.start()
    n_rogue = 0
    for n in range(total):
        is_rogue = bool(every) and n % every == 0 and n_rogue < rogue_ids
        cid = f"rogue-{n_rogue}" if is_rogue else f"c{n % 3 + 1}"
        n_rogue += is_rogue
        user = f"u{n % 500}"
        ev = AdImpression(
            impression_id=f"i{n}", ts=START + n * 100, user_id=user, campaign_id=cid, cost=0.1
        )
        began = time.perf_counter()
        result = engine.process("ad-impressions", ev, states.get(user))
        spent = time.perf_counter() - began
        if is_rogue:
            rogue_s += spent
        else:
            real_s += spent
        if result.refused is None:
            states[user] = result.state
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    tracemalloc.stop()
    real_us = real_s / max(total - n_rogue, 1) * 1e6
    rogue_us = rogue_s / max(n_rogue, 1) * 1e6
    return real_us, rogue_us, peak // 1024, len(k.pacer.campaigns)


def main() -> None:
    print(f"{'rogue ids':>10}{'us/real event':>15}{'us/rogue event':>16}{'peak KB':>10}"
          f"{'pacer holds':>13}{'vs none':>9}")  # fmt: skip
    base = None
    for rogue in (0, 5_000, 20_000, 50_000):
        real_us, rogue_us, _, held = run(rogue, trace=False)
        peak = run(rogue, trace=True)[2]
        base = base or real_us
        print(f"{rogue:>10,}{real_us:>15.1f}{rogue_us:>16.1f}{peak:>10,}{held:>13}"
              f"{real_us / base:>9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
