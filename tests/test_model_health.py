"""Issue 11, the model half: models calibrated from their first label, a health gate that
keeps an untrustworthy model out of bids, value learned on the known-model market close
to the truth, delayed conversions corrected, and bid adjustments that say why.

Real-data tests replay ../shared/data (Open Bandit: the only sample with ad clicks) and
skip with a reason when it is absent. The known-model tests run the engine on
backtest/truth.py's market; they are the slowest tests here (about a minute in all).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec
import pytest

from backtest.importers import run_import
from backtest.replay import ReplayOptions, replay
from backtest.truth import TruthParams, generate_truth
from backtest.truthcheck import TruthCheck, run_truth
from online_models.config import HOUR_MS, EngineConfig
from online_models.engine import PartitionEngine
from online_models.evaluation import BinaryScore
from online_models.events import AdImpression, Campaign
from online_models.features import hashed
from online_models.learner import Models
from online_models.models import OnlineLogistic
from online_models.outputs import BidAdjustment
from streams.metrics import Metrics
from streams.runtime_factory import build_runtime
from streams.settings import Settings
from streams.state_store import StateStore

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OBD = DATA / "open_bandit_random"
NOON = (1_700_000_000_000 // 86_400_000) * 86_400_000 + 12 * HOUR_MS
needs_obd = pytest.mark.skipif(
    not OBD.is_dir(), reason=f"{OBD} is absent: the real Open Bandit sample is not here"
)


# 1. Calibrated from the start --------------------------------------------------------


def test_a_new_model_predicts_the_running_base_rate_not_its_prior() -> None:
    """The offset is the running base rate: after 400 labels at 0.5 % the model says
    about 0.5 %, whatever its 3 % prior; on labels without any signal its progressive
    log-loss stays within 0.0005 of the running base-rate constant's, and once 100
    positives are seen its calibration is within 0.9-1.1."""
    models = Models(learning_rate=0.05, l2=1e-4, click_prior=0.03)
    x = {"bias": 1.0, "h1": 1.0, "ctr": 0.2}
    for k in range(30_000):
        models.learn_one("click", x, k % 200 == 199)
        if k == 399:
            assert models.click.p_one(x) == pytest.approx(2.06 / 402, rel=0.2)
        if models.click_score.y_sum >= 100:
            assert 0.9 <= models.click_score.calibration <= 1.1
    s = models.click_score
    assert s.logloss - s.constant_logloss < 0.0005


def replay_models(tmp: Path, *sources: Path) -> dict[str, Any]:
    files = []
    for k, src in enumerate(sources):
        out = tmp / f"obd{k}.jsonl.gz"
        run_import("open-bandit", [str(src)], str(out))
        files.append(out)
    return replay(files, tmp / "report", ReplayOptions())["models"]


@needs_obd
@pytest.mark.parametrize("campaigns", [("all",), ("men",), ("women",), ("all", "men", "women")])
def test_open_bandit_click_model_never_loses_to_the_running_base_rate(
    tmp_path: Path, campaigns: tuple[str, ...]
) -> None:
    """On the real Open Bandit logs (each campaign, and the three together) the click
    model's progressive log-loss is within 0.0005 of the running base-rate constant's,
    both from the same replay report; once 100 clicks have been seen its cumulative
    calibration stays within 0.9-1.1 at every time bucket of the report."""
    models = replay_models(tmp_path, *(OBD / c for c in campaigns))
    click = models["click"]
    print(campaigns, {k: click[k] for k in ("n", "positives", "logloss", "constant_logloss")})
    assert click["n"] > 9000 and click["positives"] > 30
    assert click["logloss"] - click["constant_logloss"] <= 0.0005
    seen = [b["click_cumulative"] for b in models["by_time"]]
    checked = [c["calibration"] for c in seen if c["positives"] >= 100]
    if click["positives"] >= 100:
        assert checked and all(0.9 <= c <= 1.1 for c in checked), checked
        assert 0.9 <= click["calibration"] <= 1.1
    # Open Bandit has no orders: every click closes as a negative conversion label.
    conversion = models["conversion"]
    assert conversion["positives"] == 0 and conversion["n"] > 0
    assert conversion["logloss"] - conversion["constant_logloss"] <= 0.0005


# 2. The health gate ------------------------------------------------------------------


def test_gate_opens_for_a_model_that_beats_the_constant_and_closes_for_a_bad_one() -> None:
    """A model learning a real signal opens the gate; one whose weights were corrupted
    (predicting 4x too high) is gated as miscalibrated; one with no signal is gated as
    not better than the constant."""
    good = Models(0.05, 1e-4, gate_window=2000, gate_min_positives=30)
    flat = Models(0.05, 1e-4, gate_window=2000, gate_min_positives=30)
    for k in range(6000):
        signal = k % 2 == 0
        x = {"h1": 1.0} if signal else {"h2": 1.0}
        good.learn_one("click", x, k % (10 if signal else 100) == 0)
        flat.learn_one("click", {"h3": 1.0}, k % 40 == 0)
    assert "click" not in good.gated()
    assert flat.gated()["click"] == "not_better_than_constant"
    good.click.weights = {k: v + math.log(4) for k, v in good.click.weights.items()}
    for k in range(2000):
        signal = k % 2 == 0
        good.learn_one("click", {"h1": 1.0} if signal else {"h2": 1.0}, False)
    assert good.gated()["click"] in {"miscalibrated", "not_better_than_constant"}


def test_a_gated_click_model_leaves_bids_to_pacing() -> None:
    """An untrained model is gated: the bid multiplier is the pacing factor alone, reason
    model_gated, the gated models named, no feature contributions."""
    c = Campaign(campaign_id="c1", daily_budget=240.0, max_multiplier=3.0)
    eng = PartitionEngine(EngineConfig(partitions=1), 0, {"c1": c})
    r = eng.process("ad-impressions", impression("u", NOON, 1.0), None)
    (bid,) = r.outputs
    assert (bid.reason, bid.multiplier, bid.gated, bid.top_features) == (
        "model_gated",
        bid.pacing_factor,
        ["click", "conversion"],
        [],
    )


def test_gate_metric_follows_the_knowledge() -> None:
    """ecom_model_gated{model} is 1 while the model is gated, 0 once it is not."""
    rt = build_runtime(Settings.from_env({}), EngineConfig(), Metrics(), {}, StateStore({}), {})
    rt.reports.update_gauges()
    text = rt.metrics.exposition().decode()
    assert 'ecom_model_gated{model="click"} 1.0' in text
    rt.knowledge.models.gate = None  # nothing gated
    rt.reports.update_gauges()
    text = rt.metrics.exposition().decode()
    assert 'ecom_model_gated{model="click"} 0.0' in text
    assert 'ecom_model_recent_logloss{model="click",predictor="constant"}' not in text


def impression(user: str, ts: int, cost: float, n: int = 0, campaign: str = "c1") -> AdImpression:
    return AdImpression(
        impression_id=f"imp-{user}-{n}",
        ts=ts,
        user_id=user,
        campaign_id=campaign,
        placement="top",
        cost=cost,
        context={"device": "ios", "region": "north"},
    )


# 3 and 4. The known-model market -----------------------------------------------------


@functools.lru_cache(maxsize=4)
def truth_check(params: TruthParams, fake_negatives: int = 1) -> TruthCheck:
    return run_truth(generate_truth(params), EngineConfig(fake_negatives=fake_negatives))


# The engine on a whole market: ~1 min alone, more on a shared 2-core machine.
@pytest.mark.timeout(900)
def test_click_model_auc_is_within_002_of_the_truth_on_the_default_market() -> None:
    """On the default market, on the same labelled impressions, the click model's
    progressive AUC is within 0.02 of the true probabilities' AUC, and so is its AUC on
    the last day; it is calibrated and its gate is open."""
    s = truth_check(TruthParams()).summary()
    print({k: v for k, v in s.items() if k.startswith(("click", "last"))})
    assert s["click_labels"] > 80_000
    assert s["click_auc_truth"] - s["click_auc_model"] <= 0.02
    assert s["last_day_auc_truth"] - s["last_day_auc_model"] <= 0.02
    assert 0.95 < s["click_calibration"] < 1.05
    assert "click" not in s["gated"]


# The engine on a whole market: ~1 min alone, more on a shared 2-core machine.
@pytest.mark.timeout(900)
def test_fake_negatives_calibrate_delayed_conversions_better_than_waiting() -> None:
    """Conversions arrive hours after their clicks, negatives 24 h after. Judged at click
    time against the final labels, the conversion model with fake-negative weighting is
    calibrated closer to 1 than the same model waiting out the window for negatives,
    and within 10 % of 1."""
    params = TruthParams(n_users=1200, days=3, seed=7)
    corrected = truth_check(params, 1).summary()
    waited = truth_check(params, 0).summary()
    print("fake negatives", corrected["conversion_calibration"], "waited",
          waited["conversion_calibration"])  # fmt: skip
    assert corrected["conversion_labels"] == waited["conversion_labels"] > 300
    assert abs(corrected["conversion_calibration"] - 1) < abs(waited["conversion_calibration"] - 1)
    assert abs(corrected["conversion_calibration"] - 1) < 0.1


def test_truth_stream_cli_writes_a_replayable_market(tmp_path: Path) -> None:
    """`ecom-stream truth-stream` writes events the replay reads and the truth beside
    them (one entry per impression)."""
    from ecom_cli.main import main

    events, truth = tmp_path / "m.jsonl.gz", tmp_path / "t.json"
    args = ["truth-stream", "-o", str(events), "--truth", str(truth), "--users", "40"]
    assert main([*args, "--days", "1", "--seed", "3"]) == 0
    report = replay([events], tmp_path / "r", ReplayOptions())
    p = msgspec.json.decode(truth.read_bytes())["p"]
    assert report["counts"]["events_by_topic"]["ad-impressions"] == len(p) > 0


# 5. Explanations ---------------------------------------------------------------------


def test_bid_adjustment_names_its_top_three_feature_contributions() -> None:
    """With learned weights, a bid carries the three largest weight x value terms, by
    readable name and sorted by size, beside p_click, p_conversion and the pacing."""
    cfg = EngineConfig(partitions=1, model_gate=0)
    c = Campaign(campaign_id="c1", category="shoes", daily_budget=240.0)
    eng = PartitionEngine(cfg, 0, {"c1": c})
    click: OnlineLogistic = eng.models.click
    bits = cfg.hash_bits
    click.weights = {
        hashed("c=c1|p=top", bits): 0.9,
        hashed("r=north", bits): -0.5,
        hashed("d=ios", bits): 0.2,
        hashed("p=top", bits): 0.05,
    }
    eng.models.conversion.weights = {hashed("c=c1", bits): 0.3}
    r = eng.process("ad-impressions", impression("u", NOON, 1.0), None)
    (bid,) = [o for o in r.outputs if isinstance(o, BidAdjustment) and o.user_id]
    assert [(f.model, f.feature, f.contribution) for f in bid.top_features] == [
        ("click", "campaign=c1 & placement=top", 0.9),
        ("click", "region=north", -0.5),
        ("conversion", "campaign=c1", 0.3),
    ]
    assert bid.p_click is not None and bid.p_conversion is not None and bid.pacing_factor > 0
    assert bid.gated == []


def test_bids_on_the_market_are_explained_with_readable_names() -> None:
    """Every per-user bid adjustment of a small market run is explained: at most three
    contributions (three once its models are open), none named by a hash bucket."""
    stream = generate_truth(TruthParams(n_users=300, days=2, seed=5))
    from online_models.decode import decode_dict
    from online_models.runner import Runner

    r = Runner(replace(EngineConfig(), gate_min_positives=10))
    bids: list[BidAdjustment] = []
    for topic, raw in stream.events:
        ev = decode_dict(topic, raw)
        if topic == "campaigns":
            r.set_campaign(ev)  # type: ignore[arg-type]
            continue
        bids += [o for o in r.feed(topic, ev).outputs if isinstance(o, BidAdjustment)]
    users = [b for b in bids if b.user_id is not None]
    explained = [b for b in users if b.reason != "model_gated"]
    assert explained, "the click gate never opened"
    for b in users:
        assert len(b.top_features) <= 3
        assert all(not re.fullmatch(r"h\d+", f.feature) for f in b.top_features)
        sizes = [abs(f.contribution) for f in b.top_features]
        assert sizes == sorted(sizes, reverse=True)
    assert sum(len(b.top_features) == 3 for b in explained) > 0.9 * len(explained)


def test_scores_state_round_trips() -> None:
    s = BinaryScore(window=10, prior=0.1)
    for k in range(30):
        s.update(0.2, k % 3 == 0, 0.15)
    assert (
        BinaryScore.from_state(msgspec.json.decode(msgspec.json.encode(s.to_state()))).summary()
        == s.summary()
    )
