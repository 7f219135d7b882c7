"""Time decay and the online user profile.

Profiles feed the models, the recommender and analysts. Their values must follow the
documented half-life, be bounded in size, and (where promised) not depend on the
order in which the three topics' events happen to arrive, so that an offline replay
rebuilds the same profile a live worker had.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from online_models.config import DAY_MS, MINUTE_MS, EngineConfig
from online_models.decay import advance, factor, value_at
from online_models.events import AdImpression, ClickEvent, OrderEvent, OrderItem
from online_models.profile import (
    AFFINITY_WEIGHTS,
    Profile,
    apply_click,
    apply_impression,
    apply_order,
)

T0 = 1_700_000_000_000
HL = 1_000  # a short half-life keeps the arithmetic readable


def cfg(**over: Any) -> EngineConfig:
    return EngineConfig(**{"half_life_ms": HL, **over})


def click(
    ts: int,
    type_: str = "view",
    item: str | None = "i1",
    category: str | None = None,
    session: str | None = None,
    n: int = 0,
) -> ClickEvent:
    extra = {"impression_id": "imp"} if type_ == "ad_click" else {}
    if type_ in ("search", "ad_click"):
        item = None
    return ClickEvent(
        event_id=f"e{n}-{ts}",
        ts=ts,
        user_id="u1",
        type=type_,
        item_id=item,
        category=category,
        session_id=session,
        **extra,
    )


def placed(
    ts: int, total: float, items: list[tuple[str, str | None]] | None = None, order_id: str = "o1"
) -> OrderEvent:
    lines = [
        OrderItem(item_id=i, quantity=1, price=total / len(items or [1]), category=c)
        for i, c in (items or [("i1", None)])
    ]
    return OrderEvent(order_id=order_id, ts=ts, user_id="u1", items=lines, total=total)


def refund(ts: int, total: float, order_id: str = "o1") -> OrderEvent:
    return OrderEvent(
        order_id=order_id, ts=ts, user_id="u1", items=[], total=total, status="refunded"
    )


# Decay arithmetic ------------------------------------------------------------------


def test_factor_halves_per_half_life() -> None:
    """factor(dt) = 2**(-dt/half_life): exactly 1/2 after one half-life, 1/4 after two,
    1 at dt=0. Every decayed count and affinity relies on this curve."""
    assert factor(0, HL) == 1.0
    assert factor(HL, HL) == 0.5
    assert factor(2 * HL, HL) == 0.25
    assert factor(HL / 2, HL) == pytest.approx(1 / math.sqrt(2))


def test_advance_newer_decays_maps_older_contributes_discounted() -> None:
    """A newer event rescales the stored maps to its time and weighs 1; an older event
    weighs factor(ref - ts), so maps are always 'as of' the latest time seen."""
    m = {"view": 1.0}
    ref, w = advance([m], ref=0, ts=HL, half_life=HL)
    assert (ref, w, m) == (HL, 1.0, {"view": 0.5})
    ref, w = advance([m], ref=ref, ts=0, half_life=HL)  # late event, one half-life old
    assert (ref, w, m) == (HL, 0.5, {"view": 0.5})


def test_value_at_reads_later_but_never_inflates_earlier() -> None:
    """Reading a stored value at a later time decays it; at an earlier time it is not
    inflated (no extrapolation into the past)."""
    assert value_at(8.0, ref=0, ts=3 * HL, half_life=HL) == 1.0
    assert value_at(8.0, ref=5, ts=0, half_life=HL) == 8.0


def test_decayed_count_is_halved_after_one_half_life() -> None:
    """One view, then one half-life later another event: the profile's decayed view
    count is 0.5 while the raw total stays 1 (decay never touches totals)."""
    p = Profile(user_id="u1")
    c = cfg()
    apply_click(p, click(T0, "view", category="shoes"), c)
    apply_click(p, click(T0 + HL, "search", n=1), c)
    assert p.decayed == {"view": 0.5, "search": 1.0}
    assert p.totals == {"view": 1, "search": 1}
    assert p.categories == {"shoes": 0.5}
    apply_click(p, click(T0 + 2 * HL, "search", n=2), c)
    assert p.decayed == {"view": 0.25, "search": 1.5}
    # Reading affinity a further half-life later decays it without mutating the profile.
    assert p.top_categories(T0 + 3 * HL, HL) == [("shoes", 0.125)]
    assert p.categories == {"shoes": 0.25}


def test_affinity_weights_per_action() -> None:
    """An add-to-cart says 3x more about interest than a view; remove-from-cart says
    nothing; an order line weighs 5. These weights rank categories for recommendations."""
    p = Profile(user_id="u1")
    c = cfg(half_life_ms=DAY_MS)
    apply_click(p, click(T0, "view", "i1", "a"), c)
    apply_click(p, click(T0, "add_to_cart", "i2", "b"), c)
    apply_click(p, click(T0, "remove_from_cart", "i3", "c"), c)
    apply_order(p, placed(T0, 10.0, [("i4", "d")]), c)
    assert p.categories == {"a": 1.0, "b": 3.0, "d": 5.0}
    assert AFFINITY_WEIGHTS["add_to_cart"] == 3.0 and AFFINITY_WEIGHTS["order"] == 5.0


def _random_events(seed: int, n: int = 300) -> list[ClickEvent | OrderEvent | AdImpression]:
    rng = random.Random(seed)
    out: list[ClickEvent | OrderEvent | AdImpression] = []
    for k in range(n):
        ts = T0 + rng.randrange(0, 30 * DAY_MS)
        r = rng.random()
        if r < 0.8:
            type_ = rng.choice(["view", "click", "add_to_cart", "wishlist", "search"])
            out.append(click(ts, type_, f"i{rng.randrange(40)}", rng.choice("abcdef"), n=k))
        elif r < 0.9:
            out.append(
                placed(
                    ts,
                    round(rng.uniform(1, 100), 2),
                    [(f"i{rng.randrange(40)}", rng.choice("abcdef"))],
                    order_id=f"o{k}",
                )
            )
        else:
            out.append(AdImpression(impression_id=f"im{k}", ts=ts, user_id="u1", campaign_id="c1"))
    return out


def _fold(events: list[Any], c: EngineConfig) -> Profile:
    p = Profile(user_id="u1")
    for ev in events:
        if isinstance(ev, ClickEvent):
            apply_click(p, ev, c)
        elif isinstance(ev, OrderEvent):
            apply_order(p, ev, c)
        else:
            apply_impression(p, ev, c)
    return p


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_decayed_counts_and_affinity_do_not_depend_on_arrival_order(seed: int) -> None:
    """The same events in time order and shuffled give the same decayed counts and
    category affinities (within 1e-9), the same totals and the same bounded recent /
    purchased lists: a replay merging topics by time rebuilds the live profile even
    though live, the three topics arrive interleaved differently."""
    c = cfg(half_life_ms=7 * DAY_MS, max_categories=24)
    events = _random_events(seed)
    in_order = _fold(sorted(events, key=lambda e: e.ts), c)
    shuffled = events[:]
    random.Random(seed + 100).shuffle(shuffled)
    other = _fold(shuffled, c)
    assert other.decay_ref == in_order.decay_ref == max(e.ts for e in events)
    assert other.decayed.keys() == in_order.decayed.keys()
    for k, v in in_order.decayed.items():
        assert other.decayed[k] == pytest.approx(v, rel=1e-9, abs=1e-9), k
    assert other.categories.keys() == in_order.categories.keys()
    for k, v in in_order.categories.items():
        assert other.categories[k] == pytest.approx(v, rel=1e-9, abs=1e-9), k
    assert other.totals == in_order.totals
    assert other.recent_items == in_order.recent_items
    assert other.purchased == in_order.purchased
    assert (other.first_seen, other.last_seen) == (in_order.first_seen, in_order.last_seen)
    assert (other.orders, other.revenue) == (in_order.orders, pytest.approx(in_order.revenue))


# Bounded sizes -----------------------------------------------------------------------


def test_categories_bounded_keeping_strongest() -> None:
    """At most max_categories are kept; the weakest go first (ties: by name), so a user
    who browses 1,000 categories still costs bounded memory."""
    c = cfg(half_life_ms=DAY_MS, max_categories=2)
    p = Profile(user_id="u1")
    apply_click(p, click(T0, "view", "i1", "a"), c)
    apply_click(p, click(T0, "view", "i2", "b"), c)
    apply_click(p, click(T0, "add_to_cart", "i3", "c"), c)
    assert p.categories == {"c": 3.0, "a": 1.0}
    for k in range(50):
        apply_click(p, click(T0 + k, "view", f"i{k}", f"cat{k}", n=k), c)
        assert len(p.categories) <= 2


def test_recent_items_bounded_keeping_latest() -> None:
    """recent_items keeps the latest max_recent_items distinct items, oldest first; a
    re-view moves an item to the end and a late (older) view changes nothing."""
    c = cfg(max_recent_items=3)
    p = Profile(user_id="u1")
    for k in range(6):
        apply_click(p, click(T0 + k, "view", f"i{k}", n=k), c)
    assert p.recent_items == [["i3", T0 + 3], ["i4", T0 + 4], ["i5", T0 + 5]]
    apply_click(p, click(T0 + 6, "view", "i3", n=6), c)
    assert p.recent_items == [["i4", T0 + 4], ["i5", T0 + 5], ["i3", T0 + 6]]
    apply_click(p, click(T0 + 1, "view", "i1", n=7), c)  # late: older than all kept
    apply_click(p, click(T0 + 2, "view", "i5", n=8), c)  # late re-view of a kept item
    assert p.recent_items == [["i4", T0 + 4], ["i5", T0 + 5], ["i3", T0 + 6]]


def test_recent_items_skip_ad_clicks_and_cart_removals() -> None:
    """An ad click (no item) and a cart removal (a negative signal) do not enter recent
    items, which drive co-visitation recommendations."""
    c = cfg()
    p = Profile(user_id="u1")
    apply_click(p, click(T0, "remove_from_cart", "gone", n=1), c)
    apply_click(p, click(T0 + 1, "ad_click", n=2), c)
    apply_click(p, click(T0 + 2, "wishlist", "w", n=3), c)
    assert p.recent_items == [["w", T0 + 2]]
    assert p.ad_clicks == 1


# Sessions ----------------------------------------------------------------------------


def test_sessions_counted_by_session_id() -> None:
    """With session ids, a new id starts a session whatever the time gap."""
    c = cfg()
    p = Profile(user_id="u1")
    for k, sid in enumerate(["s1", "s1", "s2", "s2"]):
        apply_click(p, click(T0 + k * 1000, session=sid, n=k), c)
    assert p.sessions == 2
    # Same id after a long pause is still the same session.
    apply_click(p, click(T0 + 5 * 60 * MINUTE_MS, session="s2", n=9), c)
    assert p.sessions == 2
    assert [sid for sid, _ in p.recent_sessions] == ["s1", "s2"]
    # Going back to an earlier, still recent session (another tab, or a redelivered
    # older event) is not a new session.
    apply_click(p, click(T0 + 5 * 60 * MINUTE_MS + 1000, session="s1", n=10), c)
    assert p.sessions == 2


def test_sessions_split_by_30_minute_gap_without_ids() -> None:
    """Without session ids, a gap of more than session_gap_ms (30 min) starts a new
    session; a gap of exactly 30 min does not."""
    c = cfg()
    p = Profile(user_id="u1")
    for k, minute in enumerate([0, 10, 40, 71, 72]):
        apply_click(p, click(T0 + minute * MINUTE_MS, n=k), c)
    # 0 | 10 (10 min) | 40 (exactly 30) | 71 (31 > 30: new) | 72
    assert p.sessions == 2


# Orders, CTR, RFM --------------------------------------------------------------------


def test_refund_reverses_revenue_never_below_zero() -> None:
    """A refund subtracts its total from revenue; revenue never goes negative (a refund
    of an order placed before the profile existed must not create negative value)."""
    c = cfg()
    p = Profile(user_id="u1")
    apply_order(p, placed(T0, 100.0), c)
    apply_order(p, refund(T0 + 1, 30.0), c)
    assert (p.orders, p.refunds, p.revenue) == (1, 1, 70.0)
    apply_order(p, refund(T0 + 2, 100.0, order_id="o2"), c)
    assert (p.orders, p.refunds, p.revenue) == (1, 2, 0.0)
    assert p.purchased == [["i1", T0]]  # what was bought stays known (for exclusion)
    q = Profile(user_id="u2")
    apply_order(q, refund(T0, 10.0), c)
    assert q.revenue == 0.0 and q.orders == 0


def test_ctr_is_smoothed_towards_2_percent_prior() -> None:
    """CTR = (clicks + 1) / (impressions + 50): a user with no history has the 2% prior
    instead of 0/0, and one lucky click on one impression is not a 100% CTR."""
    c = cfg()
    p = Profile(user_id="u1")
    assert p.ctr == 0.02
    apply_impression(p, AdImpression(impression_id="im", ts=T0, user_id="u1", campaign_id="c1"), c)
    apply_click(p, click(T0 + 1, "ad_click"), c)
    assert p.ctr == pytest.approx(2 / 51)
    for k in range(9):
        apply_impression(
            p,
            AdImpression(impression_id=f"im{k}", ts=T0 + 2 + k, user_id="u1", campaign_id="c1"),
            c,
        )
    assert (p.ad_impressions, p.ad_clicks) == (10, 1)
    assert p.ctr == pytest.approx(2 / 60)


def test_rfm_values() -> None:
    """RFM on log scales: recency = log1p(days since last order), frequency =
    log1p(orders), monetary = log1p(revenue); used for segmentation."""
    c = cfg()
    p = Profile(user_id="u1")
    apply_order(p, placed(T0, 100.0), c)
    apply_order(p, placed(T0 + DAY_MS, 50.0, order_id="o2"), c)
    rfm = p.rfm(T0 + 4 * DAY_MS)
    assert rfm == {
        "r": pytest.approx(math.log1p(3)),
        "f": pytest.approx(math.log1p(2)),
        "m": pytest.approx(math.log1p(150)),
    }
    assert p.average_order_value == 75.0
    assert (p.first_order_ts, p.last_order_ts) == (T0, T0 + DAY_MS)
    # A clock behind the last order gives recency 0, not a negative log.
    assert p.rfm(T0)["r"] == 0.0


def test_rfm_without_orders_uses_last_seen() -> None:
    """A browser without orders has recency from their last event, f = m = 0."""
    c = cfg()
    p = Profile(user_id="u1")
    apply_click(p, click(T0), c)
    assert p.rfm(T0 + 2 * DAY_MS) == {"r": pytest.approx(math.log1p(2)), "f": 0.0, "m": 0.0}
    assert p.average_order_value == 0.0


def test_first_and_last_seen_tolerate_late_events() -> None:
    """A late event moves first_seen back but never moves last_seen back."""
    c = cfg()
    p = Profile(user_id="u1")
    apply_click(p, click(T0 + 1000, n=1), c)
    apply_click(p, click(T0, n=2), c)
    assert (p.first_seen, p.last_seen) == (T0, T0 + 1000)


def test_session_count_does_not_depend_on_arrival_order() -> None:
    """Redelivery after a crash can hand over a user's older events after newer ones;
    the session count and its bookkeeping must come out as in time order."""
    import random

    c = cfg()
    events = [click(T0 + k * 60_000, session=f"s{k // 3}", n=k) for k in range(40)]
    in_order = Profile(user_id="u1")
    for ev in events:
        apply_click(in_order, ev, c)
    for seed in range(5):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled[:12])  # a read-back span of 12 events
        head, tail = shuffled[:12], shuffled[12:]
        random.Random(seed).shuffle(head)
        p = Profile(user_id="u1")
        for ev in head + tail:
            apply_click(p, ev, c)
        assert (p.sessions, p.recent_sessions) == (in_order.sessions, in_order.recent_sessions)
