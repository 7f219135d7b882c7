"""Bounded state under hostile input (issue 17): impressions for 50,000 campaign ids
never announced on the campaigns topic. Every structure keyed by a campaign id stays
within its cap (docs/operations.md "Memory"), the refused impressions are counted as
`unknown_campaign` dead letters, memory stays flat, and the pacer's per-minute
re-plan keeps touching the same few campaigns (the per-event cost: see
benchmarks/rogue_campaigns_bench.py for the timings).
"""

from __future__ import annotations

import gc
import tracemalloc

import msgspec

from backtest.synthetic import campaigns
from online_models.config import EngineConfig
from online_models.engine import PartitionEngine
from online_models.events import AdImpression, Campaign
from online_models.knowledge import SharedKnowledge
from online_models.state import UserState

START = 1_700_000_000_000
ROGUE = 50_000


def _impression(n: int, campaign_id: str) -> AdImpression:
    return AdImpression(
        impression_id=f"imp-{n}",
        ts=START + n * 50,  # 50,000 impressions over ~42 minutes: pacer re-plans included
        user_id=f"u{n % 200}",
        campaign_id=campaign_id,
        cost=0.1,
    )


def _sizes(k: SharedKnowledge, engine: PartitionEngine) -> dict[str, int]:
    return {
        "unknown": len(k.unknown),
        "pacer": len(k.pacer.campaigns),
        "values": len(k.values.means),
        "costs": len(k.costs.means),
        "pacing_sent": len(engine.bids.pacing_sent),
    }


def _run(rogue: bool) -> tuple[dict[int, dict[str, int]], int, int, int]:
    """Feed 50,000 impressions, one in ten of a real campaign's and the rest of rogue
    ids (`rogue=False`: the real ones alone, the baseline measured in the same run).
    Returns the structure sizes at 10,000 and 50,000, the memory held at the end,
    refused impressions and outputs."""
    cfg = EngineConfig(partitions=1, max_unknown_campaigns=64)
    k = SharedKnowledge(cfg, {})
    for c in campaigns(3):
        k.set_campaign(msgspec.convert(c, Campaign))
    engine = PartitionEngine(cfg, 0, k.campaigns, k)
    states: dict[str, UserState] = {}
    refused = outputs = 0
    sizes_at: dict[int, dict[str, int]] = {}
    gc.collect()
    tracemalloc.start()
    try:
        for n in range(ROGUE):
            real = n % 10 == 0
            if real or rogue:
                cid = f"c{n % 3 + 1}" if real else f"rogue-{n}"
                user = f"u{n % 200}"
                result = engine.process("ad-impressions", _impression(n, cid), states.get(user))
                if result.refused is not None:
                    assert result.refused == "unknown_campaign"
                    refused += 1
                else:
                    states[user] = result.state
                    outputs += len(result.outputs)
            if n + 1 in (10_000, ROGUE):
                sizes_at[n + 1] = _sizes(k, engine)
        gc.collect()
        memory = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return sizes_at, memory, refused, outputs


def test_fifty_thousand_rogue_campaign_ids_keep_state_bounded() -> None:
    cap = EngineConfig().max_unknown_campaigns
    sizes_at, memory, refused, outputs = _run(rogue=True)
    _, baseline_memory, _, baseline_outputs = _run(rogue=False)
    for sizes in sizes_at.values():
        assert sizes["unknown"] == cap
        assert all(v <= cap + 3 for v in sizes.values()), sizes  # + the three known
    # The first 64 rogue ids are held (they get the defaults); every later one is refused.
    assert refused == ROGUE - ROGUE // 10 - cap
    # Flat from 10,000 impressions on (announced pacing grows only as the three real
    # campaigns' factors move, within the cap checked above).
    held = [{k: v for k, v in sizes.items() if k != "pacing_sent"} for sizes in sizes_at.values()]
    assert held[0] == held[1]
    assert outputs > 0 and baseline_outputs > 0  # the real campaigns kept bidding and pacing
    # Memory: the 45,000 rogue impressions cost what the 64 held campaigns and their
    # few pending impressions hold, next to nothing against the real traffic alone.
    assert memory - baseline_memory < 512 * 1024, (memory, baseline_memory)


def test_an_idle_unknown_campaign_is_forgotten_and_frees_its_place() -> None:
    cfg = EngineConfig(partitions=1, max_unknown_campaigns=2, unknown_campaign_idle_ms=3_600_000)
    k = SharedKnowledge(cfg, {})
    engine = PartitionEngine(cfg, 0, k.campaigns, k)
    for n, cid in enumerate(("a", "b")):
        assert engine.process("ad-impressions", _impression(n, cid), None).refused is None
    assert engine.process("ad-impressions", _impression(2, "c"), None).refused == (
        "unknown_campaign"
    )
    later = AdImpression(
        impression_id="late", ts=START + 2 * 3_600_000, user_id="u", campaign_id="c"
    )
    engine.process("clickstream", _view(START + 2 * 3_600_000 - 1), None)  # time passes
    assert engine.process("ad-impressions", later, None).refused is None
    assert set(k.unknown) == {"c"} and "a" not in k.pacer.campaigns


def test_a_campaign_from_the_topic_is_never_refused_and_max_campaigns_bounds_the_topic() -> None:
    cfg = EngineConfig(partitions=1, max_unknown_campaigns=1, max_campaigns=2)
    k = SharedKnowledge(cfg, {})
    assert k.set_campaign(Campaign(campaign_id="c1"))
    assert k.set_campaign(Campaign(campaign_id="c2"))
    assert not k.set_campaign(Campaign(campaign_id="c3"))  # dead-lettered by the feed
    assert k.set_campaign(Campaign(campaign_id="c1", daily_budget=5.0))  # an update is fine
    engine = PartitionEngine(cfg, 0, k.campaigns, k)
    assert engine.process("ad-impressions", _impression(0, "c1"), None).refused is None
    assert engine.process("ad-impressions", _impression(1, "c3"), None).refused is None
    assert engine.process("ad-impressions", _impression(2, "c4"), None).refused == (
        "unknown_campaign"
    )
    k.remove_campaign("c1")  # a tombstone: defaults again; no place left among unknown
    assert "c1" not in k.unknown and "c1" not in k.campaigns and "c1" not in k.pacer.campaigns
    k.remove_campaign("c3")  # not known: nothing to do
    assert set(k.unknown) == {"c3"}


def _view(ts: int):  # type: ignore[no-untyped-def]
    from online_models.events import ClickEvent

    return ClickEvent(event_id=f"v{ts}", ts=ts, user_id="u", type="view", item_id="i")
