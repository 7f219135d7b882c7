"""Promotions through the replay (issue 22, clause 3): the window join of the domain's
PromotionStream, and report.json / report.html of a replay of the known-truth market."""

from __future__ import annotations

import orjson

from backtest.jsonl import write_events
from backtest.promo_market import market_events
from backtest.replay import ReplayOptions, replay
from online_models.promotions.offers import Offer, OfferExposure
from online_models.promotions.stream import PromotionStream

TS = 1_767_571_200_000


def _exposure(i: int, ts: int, treated: bool = True) -> OfferExposure:
    return OfferExposure(event_id=f"e{i}", ts=ts, user_id=f"u{i}", offer_id="o", treated=treated)


def test_purchase_within_window_labels_bought_and_late_one_does_not():
    s = PromotionStream(k=1)
    s.offer(Offer(offer_id="o", cost=1.0, window_s=3600))
    s.exposure(_exposure(1, TS))
    s.exposure(_exposure(2, TS))
    assert [o.bought for o in s.order("u1", TS + 3_599_000)] == [True]
    # u2's window ends at TS + 1 h: its purchase after that is not the offer's outcome.
    late = s.order("u2", TS + 3_601_000)
    assert [(o.exposure.user_id, o.bought, o.ts) for o in late] == [("u2", False, TS + 3_600_000)]
    assert s.pending_count() == 0


def test_unknown_offer_and_ineligible_segment_get_no_decision():
    s = PromotionStream(k=1)
    s.offer(Offer(offer_id="o", cost=1.0, eligible_segments=["north"]))
    assert s.exposure(_exposure(1, TS)) is None  # segment "" is not eligible
    other = OfferExposure(event_id="x", ts=TS, user_id="u", offer_id="zz", treated=True)
    assert s.exposure(other) is None
    assert (s.unknown_offer, s.not_eligible) == (1, 1)


def test_replay_of_the_market_reports_qini_against_oracle_and_response(tmp_path):
    events = tmp_path / "promotions.jsonl"
    write_events(events, market_events(1, 2, n_train=40_000, n_test=20_000))
    report = replay([events], tmp_path / "rep", ReplayOptions(partitions=1))
    p = orjson.loads((tmp_path / "rep" / "report.json").read_bytes())["promotions"]
    assert p == orjson.loads(orjson.dumps(report["promotions"]))
    assert p["outcomes"] == {"learned_before": 40_000, "judged": 20_000}
    q = p["qini"]
    assert q["captured"] == q["learned"] / q["oracle"]
    # The learned uplift ranks far better than random and than the response model,
    # which targets sure things and sleeping dogs (negative Qini).
    assert q["captured"] > 0.6 and q["response_model"] < 0 < q["learned"]
    assert p["vs_response_model"] > 1.5
    assert p["purchase_intent"]["log_loss"] < p["purchase_intent"]["base_rate_log_loss"]
    decisions = p["decisions"]
    assert sum(decisions.values()) == 60_000 and decisions["control"] > 0
    assert report["counts"]["outputs_by_topic"]["promotion-decisions"] == 60_000
