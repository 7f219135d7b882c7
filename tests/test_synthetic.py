"""The synthetic stream is deterministic, ordered, valid and carries learnable signals."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

import orjson
import pytest

from backtest.synthetic import campaign_category, campaigns, generate, malformed_inputs
from online_models.decode import REASONS, DecodeError, decode_dict, decode_input

START_MS = 1_700_000_000_000
DURATION_S = 6 * 3600
Events = list[tuple[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def events() -> Events:
    return list(generate(n_users=400, duration_s=DURATION_S, seed=11, start_ms=START_MS))


def test_same_seed_same_events_and_other_seed_differs(events: Events) -> None:
    again = list(generate(n_users=400, duration_s=DURATION_S, seed=11, start_ms=START_MS))
    assert again == events
    assert list(generate(n_users=400, duration_s=DURATION_S, seed=12)) != events


def test_event_time_is_non_decreasing_and_inside_the_window(events: Events) -> None:
    stamps = [e["ts"] for _, e in events]
    assert stamps == sorted(stamps)
    assert stamps[0] >= START_MS and stamps[-1] < START_MS + DURATION_S * 1000


def test_every_event_validates_as_dict_and_as_bytes(events: Events) -> None:
    for topic, event in events:
        decoded = decode_dict(topic, event)
        assert getattr(decoded, "ts", None) == event["ts"]
        assert decode_input(topic, orjson.dumps(event)) == decoded


def test_all_topics_types_and_statuses_occur(events: Events) -> None:
    kinds = Counter((topic, e.get("type") or e.get("status")) for topic, e in events)
    for type_ in ("view", "click", "search", "add_to_cart", "remove_from_cart", "wishlist"):
        assert kinds["clickstream", type_] > 0, type_
    assert kinds["clickstream", "ad_click"] > 0
    assert kinds["ad-impressions", None] > 0
    assert kinds["orders", "placed"] > kinds["orders", "refunded"] > 0
    assert kinds["orders", "cancelled"] > 0
    assert len({e["user_id"] for _, e in events}) > 300


def test_ids_are_unique(events: Events) -> None:
    clicks = [e["event_id"] for t, e in events if t == "clickstream"]
    impressions = [e["impression_id"] for t, e in events if t == "ad-impressions"]
    placed = [e["order_id"] for t, e in events if t == "orders" and e["status"] == "placed"]
    for ids in (clicks, impressions, placed):
        assert len(ids) == len(set(ids))


def test_ctr_is_in_range_and_rises_with_category_affinity(events: Events) -> None:
    clicked = {e["impression_id"] for t, e in events if e.get("type") == "ad_click"}
    views: dict[str, Counter[str]] = defaultdict(Counter)
    share: dict[str, float] = {}  # impression -> user's past view share of the ad's category
    for topic, e in events:
        if e.get("type") == "view":
            views[e["user_id"]][e["category"]] += 1
        elif topic == "ad-impressions":
            seen = views[e["user_id"]]
            total = sum(seen.values())
            share[e["impression_id"]] = (
                seen[campaign_category(e["campaign_id"])] / total if total else 0.0
            )
    assert 0.02 <= len(clicked) / len(share) <= 0.08

    def ctr(ids: list[str]) -> float:
        return sum(i in clicked for i in ids) / len(ids)

    fans = [i for i, s in share.items() if s >= 0.2]
    others = [i for i, s in share.items() if s < 0.2]
    assert ctr(fans) > 1.5 * ctr(others)


def test_ad_clicks_follow_an_earlier_impression_of_the_same_user(events: Events) -> None:
    served: dict[str, dict[str, Any]] = {}
    n_clicks = 0
    for topic, e in events:
        if topic == "ad-impressions":
            served[e["impression_id"]] = e
            assert 0 < e["cost"] < e["bid"]
            assert e["campaign_id"] in {c["campaign_id"] for c in campaigns(3)}
        elif topic == "clickstream" and e["type"] == "ad_click":
            n_clicks += 1
            imp = served[e["impression_id"]]  # KeyError: click before its impression
            assert imp["user_id"] == e["user_id"]
            assert 0 < e["ts"] - imp["ts"] <= 180_000
    assert n_clicks > 50


def test_orders_are_consistent_and_more_likely_after_an_ad_click(events: Events) -> None:
    placed: dict[str, dict[str, Any]] = {}
    for topic, e in events:
        if topic != "orders":
            continue
        if e["status"] == "placed":
            lines = sum(i["price"] * i["quantity"] for i in e["items"])
            assert e["total"] == pytest.approx(lines, abs=0.01) and e["currency"] == "EUR"
            placed[e["order_id"]] = e
        else:
            first = placed[e["order_id"]]
            assert first["user_id"] == e["user_id"] and first["ts"] < e["ts"]
    order_ts: dict[str, list[int]] = defaultdict(list)
    for o in placed.values():
        order_ts[o["user_id"]].append(o["ts"])
    clicked = {e["impression_id"] for _, e in events if e.get("type") == "ad_click"}

    def conversion(ids: set[str]) -> float:
        imps = [e for t, e in events if t == "ad-impressions" and e["impression_id"] in ids]
        hits = sum(any(0 < ts - i["ts"] < 1_800_000 for ts in order_ts[i["user_id"]]) for i in imps)
        return hits / len(imps)

    all_ids = {e["impression_id"] for t, e in events if t == "ad-impressions"}
    assert conversion(clicked) > 1.2 * conversion(all_ids - clicked)


def test_campaign_settings_validate() -> None:
    settings = campaigns(5)
    assert [c["campaign_id"] for c in settings] == ["c1", "c2", "c3", "c4", "c5"]
    for c in settings:
        decode_dict("campaigns", c)


@pytest.mark.parametrize(("topic", "raw", "reason"), malformed_inputs())
def test_malformed_input_is_rejected_with_its_reason(topic: str, raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_input(topic, raw)
    assert info.value.reason == reason


def test_malformed_inputs_cover_every_specific_reason() -> None:
    covered = {reason for _, _, reason in malformed_inputs()}
    assert covered == set(REASONS) - {"invalid_value"}


def test_hundred_thousand_events_are_quick() -> None:
    began = time.perf_counter()
    n = sum(1 for _ in generate(n_users=6600, duration_s=3600))
    elapsed = time.perf_counter() - began
    assert n > 90_000
    # Measured about 0.9 s; the bound is loose so a busy CI machine does not flake.
    assert elapsed < 6.0, f"{n} events took {elapsed:.2f}s"


def test_activity_scales_the_event_rate_of_the_same_population() -> None:
    """A lower activity spreads a population's events over more event time (the soak
    benchmark uses it so that day-long windows close within minutes of a live run)."""
    day = list(generate(n_users=200, duration_s=86_400, seed=3, start_ms=START_MS))
    quiet = list(generate(n_users=200, duration_s=86_400, seed=3, start_ms=START_MS, activity=0.1))
    assert 0.05 < len(quiet) / len(day) < 0.2
    assert {e["user_id"] for _, e in quiet} <= {f"u{u}" for u in range(200)}
    default = generate(n_users=200, duration_s=86_400, seed=3, start_ms=START_MS, activity=1.0)
    assert list(default) == day
