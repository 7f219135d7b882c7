"""A deterministic, realistic synthetic event stream for demos, backtests and tests.

Users hold latent category preferences; they browse in sessions that stay near their
favourite categories and walk between neighbouring items (co-visitation). Ads convert
with a rate that rises with the user's affinity to the campaign's category, and orders
are more likely after an ad click, so both signals are learnable.

>>> events = list(generate(n_users=20, duration_s=3600, seed=1))
>>> events == list(generate(n_users=20, duration_s=3600, seed=1))
True
>>> sorted({topic for topic, _ in events})
['ad-impressions', 'clickstream', 'orders']
>>> [c["campaign_id"] for c in campaigns(3)]
['c1', 'c2', 'c3']
"""

from __future__ import annotations

import heapq
import json
import math
import pickle
import random
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

CATEGORIES = (
    "shoes", "books", "phones", "laptops", "toys", "garden", "kitchen", "beauty",
    "sports", "music", "games", "watches", "bags", "furniture", "lighting", "pets",
    "baby", "tools", "coffee", "cameras",
)  # fmt: skip
ITEMS_PER_CATEGORY = 40
_ADJECTIVES = ("cheap", "best", "red", "wireless", "organic", "vintage", "large", "kids", "pro")
_PLACEMENTS = ("search_top", "product_page", "homepage", "sidebar")
_DEVICES = ("mobile", "mobile", "desktop", "tablet")
_REGIONS = ("DE", "FR", "NL", "ES", "IT", "AT")
Event = tuple[str, dict[str, Any]]


def campaign_category(campaign_id: str) -> str:
    """The category a campaign advertises; spread so campaigns rarely share one.

    >>> campaign_category("c1"), campaign_category("c2")
    ('shoes', 'beauty')
    """
    return CATEGORIES[(int(campaign_id[1:]) - 1) * 7 % len(CATEGORIES)]


def campaigns(n_campaigns: int = 3) -> list[dict[str, Any]]:
    """Campaign settings as published on the `campaigns` topic."""
    return [
        {
            "campaign_id": f"c{i}",
            "daily_budget": 400.0 + 200.0 * (i % 4),
            "target_roas": 3.0 + 0.5 * (i % 3),
            "max_multiplier": 3.0,
            "min_multiplier": 0.2,
            "active": True,
            "category": campaign_category(f"c{i}"),
        }
        for i in range(1, n_campaigns + 1)
    ]


class _World:
    """Catalog, users and campaigns drawn once from the seed."""

    def __init__(self, rng: random.Random, n_users: int, n_campaigns: int) -> None:
        n_cat = len(CATEGORIES)
        # Lognormal prices around a per-category level: coffee is cheap, laptops are not.
        levels = [rng.uniform(1.5, 6.0) for _ in range(n_cat)]
        self.prices = [
            [round(min(rng.lognormvariate(levels[c], 0.5), 20_000.0), 2)
             for _ in range(ITEMS_PER_CATEGORY)]
            for c in range(n_cat)
        ]  # fmt: skip
        # Zipf-like popularity inside a category: a few items get most of the views.
        self.item_cum = list(accumulate(1.0 / (j + 1) ** 0.8 for j in range(ITEMS_PER_CATEGORY)))
        # Dirichlet(0.3) preferences: most users care about two or three categories.
        # Affinity is the preference relative to the user's favourite category, 0..1.
        self.affinity: list[list[float]] = []
        self.pref_cum: list[list[float]] = []
        for _ in range(n_users):
            g = [rng.gammavariate(0.3, 1.0) + 1e-9 for _ in range(n_cat)]
            top = max(g)
            self.affinity.append([x / top for x in g])
            self.pref_cum.append(list(accumulate(g)))
        self.rate = [rng.lognormvariate(0.0, 0.75) for _ in range(n_users)]  # sessions/h
        self.region = [rng.choice(_REGIONS) for _ in range(n_users)]
        self.campaigns = [(c["campaign_id"], CATEGORIES.index(campaign_category(c["campaign_id"])),
                           rng.uniform(0.3, 1.5)) for c in campaigns(n_campaigns)]  # fmt: skip


class _Sim:
    def __init__(self, seed: int, n_users: int, n_campaigns: int, start_ms: int, end_ms: int):
        self.rng = random.Random(seed)
        self.world = _World(self.rng, n_users, n_campaigns)
        self.end_ms = end_ms
        self.pending: list[tuple[int, int, str, dict[str, Any]]] = []
        self.seq = 0  # heap tie-breaker: equal timestamps keep their emission order
        self.n_ids = 0

    def emit(self, topic: str, event: dict[str, Any]) -> None:
        if event["ts"] < self.end_ms:  # the window is half-open; later events are dropped
            self.seq += 1
            heapq.heappush(self.pending, (event["ts"], self.seq, topic, event))

    def next_id(self) -> int:
        self.n_ids += 1
        return self.n_ids

    def item(self, cat: int, idx: int) -> tuple[str, str, float]:
        return f"i{cat * ITEMS_PER_CATEGORY + idx}", CATEGORIES[cat], self.world.prices[cat][idx]

    def session(self, u: int, t: int) -> None:
        rng, w = self.rng, self.world
        base = {"user_id": f"u{u}", "session_id": f"s{self.next_id()}"}
        device = rng.choice(_DEVICES)
        cat = rng.choices(range(len(CATEGORIES)), cum_weights=w.pref_cum[u])[0]
        idx = rng.choices(range(ITEMS_PER_CATEGORY), cum_weights=w.item_cum)[0]
        cart: dict[int, tuple[int, int]] = {}  # item key -> (category, index)
        ad_clicked = False
        n = 0

        def click(type_: str, **fields: Any) -> None:
            nonlocal n
            n += 1
            self.emit("clickstream", {"event_id": f"{base['session_id']}-{n}", "ts": t,
                                      "type": type_, **base, **fields})  # fmt: skip

        if rng.random() < 0.3:
            click("search", query=f"{rng.choice(_ADJECTIVES)} {CATEGORIES[cat]}")
            t += rng.randint(2_000, 15_000)
        for _ in range(1 + min(int(rng.expovariate(1 / 7)), 60)):
            item_id, cat_name, price = self.item(cat, idx)
            fields = {"item_id": item_id, "category": cat_name, "price": price}
            click("view", **fields)
            aff = w.affinity[u][cat]
            if rng.random() < 0.25:
                click("click", **fields)
            if rng.random() < 0.04 + 0.12 * aff:
                t += rng.randint(1_000, 20_000)
                click("add_to_cart", **fields)
                cart[cat * ITEMS_PER_CATEGORY + idx] = (cat, idx)
            elif rng.random() < 0.02:
                click("wishlist", **fields)
            if cart and rng.random() < 0.03:
                cat_r, idx_r = cart.pop(rng.choice(sorted(cart)))
                r_id, r_cat, r_price = self.item(cat_r, idx_r)
                click("remove_from_cart", item_id=r_id, category=r_cat, price=r_price)
            if rng.random() < 0.2:
                clicked, t = self.impression(u, t, device)
                if clicked is not None:
                    ad_clicked = True
                    click("ad_click", impression_id=clicked[0])
                    cat = clicked[1]  # the landing page belongs to the campaign's category
                    idx = rng.choices(range(ITEMS_PER_CATEGORY), cum_weights=w.item_cum)[0]
                    t += rng.randint(1_000, 5_000)
                    continue
            t += int(rng.expovariate(1 / 25_000)) + 1_000
            if rng.random() < 0.7:  # co-visitation: neighbouring items of one category
                idx = min(max(idx + rng.choice((-2, -1, 1, 1, 2, 3)), 0), ITEMS_PER_CATEGORY - 1)
            else:
                cat = rng.choices(range(len(CATEGORIES)), cum_weights=w.pref_cum[u])[0]
                idx = rng.choices(range(ITEMS_PER_CATEGORY), cum_weights=w.item_cum)[0]
        if cart and rng.random() < (0.6 if ad_clicked else 0.3):
            self.order(u, t + rng.randint(5_000, 120_000), [cart[k] for k in sorted(cart)])

    def impression(self, u: int, t: int, device: str) -> tuple[tuple[str, int] | None, int]:
        rng, w = self.rng, self.world
        cid, cat, bid_level = rng.choice(w.campaigns)
        bid = round(bid_level * rng.lognormvariate(0.0, 0.3), 4)
        imp_id = f"imp{self.next_id()}"
        self.emit("ad-impressions", {
            "impression_id": imp_id, "ts": t, "user_id": f"u{u}", "campaign_id": cid,
            "ad_id": f"{cid}-ad{rng.randint(1, 3)}", "placement": rng.choice(_PLACEMENTS),
            "bid": bid, "cost": round(bid * rng.uniform(0.4, 0.95), 4),
            "context": {"device": device, "region": w.region[u]},
        })  # fmt: skip
        # CTR 2..8 %, rising with the user's affinity to the advertised category.
        if rng.random() < 0.02 + 0.06 * w.affinity[u][cat]:
            return (imp_id, cat), t + min(int(rng.expovariate(1 / 20_000)), 170_000) + 1_000
        return None, t

    def order(self, u: int, t: int, lines: list[tuple[int, int]]) -> None:
        rng = self.rng
        items: list[dict[str, Any]] = []
        for cat, idx in lines:
            item_id, cat_name, price = self.item(cat, idx)
            qty = 1 if rng.random() < 0.8 else rng.randint(2, 3)
            items.append({"item_id": item_id, "quantity": qty, "price": price,
                          "category": cat_name})  # fmt: skip
        order = {"order_id": f"o{self.next_id()}", "ts": t, "user_id": f"u{u}", "items": items,
                 "total": round(sum(i["price"] * i["quantity"] for i in items), 2),
                 "currency": "EUR", "status": "placed"}  # fmt: skip
        self.emit("orders", order)
        r = rng.random()
        if r < 0.02:
            self.emit("orders", {**order, "status": "cancelled",
                                 "ts": t + rng.randint(60_000, 3_600_000)})  # fmt: skip
        elif r < 0.05:
            delay = 600_000 + int(rng.expovariate(1 / 7_200_000))
            self.emit("orders", {**order, "status": "refunded", "ts": t + delay})


def generate(
    n_users: int,
    duration_s: int,
    seed: int = 7,
    start_ms: int = 1_700_000_000_000,
    n_campaigns: int = 3,
    activity: float = 1.0,
) -> Iterator[Event]:
    """Yield (topic, event) in non-decreasing `ts` within [start_ms, start_ms + duration).

    `activity` scales every user's session rate (1.0: about 1.3 sessions an hour on
    average); a smaller value spreads the same population's events over more event
    time, so that day-long windows close within a short live run (the soak benchmark).
    """
    end_ms = start_ms + duration_s * 1000
    sim = _Sim(seed, n_users, n_campaigns, start_ms, end_ms)
    rng, w = sim.rng, sim.world
    # Next session start per user; sessions are generated lazily in start order, so an
    # event can be released as soon as no future session can start before it.
    rate = [r * activity / 3.6e6 for r in w.rate]  # sessions per ms
    starts = [(start_ms + int(rng.expovariate(rate[u])), u) for u in range(n_users)]
    heapq.heapify(starts)
    while True:
        horizon = sim.pending[0][0] if sim.pending else math.inf
        while starts and starts[0][0] <= horizon and starts[0][0] < end_ms:
            t, u = heapq.heappop(starts)
            sim.session(u, t)
            heapq.heappush(starts, (t + 60_000 + int(rng.expovariate(rate[u])), u))
            horizon = sim.pending[0][0] if sim.pending else math.inf
        if not sim.pending:
            return
        _, _, topic, event = heapq.heappop(sim.pending)
        yield topic, event


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def malformed_inputs() -> list[tuple[str, bytes, str]]:
    """(topic, raw bytes, expected dead-letter reason), one or more per class."""
    view = {"event_id": "bad", "ts": 1_700_000_000_000, "user_id": "u1", "type": "view",
            "item_id": "i1", "price": 9.5}  # fmt: skip
    line = {"item_id": "i1", "quantity": 1, "price": 9.5}
    order = {"order_id": "o-bad", "ts": 1_700_000_000_000, "user_id": "u1", "items": [line]}
    no_user = {k: v for k, v in view.items() if k != "user_id"}
    return [
        ("clickstream", b'{"event_id": "x", "ts": ', "not_json"),
        ("orders", b"[1, 2, 3]", "not_object"),
        ("clickstream", _json(no_user), "missing_field"),
        ("clickstream", _json({**view, "price": "cheap"}), "wrong_type"),
        ("orders", _json({**order, "items": "i1"}), "wrong_type"),
        ("clickstream", _json({**view, "type": "teleport"}), "unknown_type"),
        ("clickstream", _json({**view, "price": -3.0}), "negative_value"),
        ("orders", _json({**order, "items": [{**line, "price": -1.0}]}), "negative_value"),
        ("orders", _json({**order, "items": [{**line, "quantity": -2}]}), "negative_value"),
        ("clickstream", _json({**view, "ts": "yesterday at noon"}), "bad_timestamp"),
        ("clickstream", _json({**view, "ts": "1970-01-02T00:00:00Z"}), "bad_timestamp"),
        ("orders", _json({**order, "ts": "2300-01-01T00:00:00Z"}), "bad_timestamp"),
        ("clickstream", _json({**view, "ts": 86_400}), "bad_timestamp"),
        ("clickstream", _json({**view, "query": "x" * 70_000}), "oversized"),
        ("orders", _json({**order, "items": [line] * 501}), "too_many_items"),
        ("clickstream", _json({**view, "price": 1e10}), "out_of_range"),
        ("orders", pickle.dumps(order), "pickle_payload"),
        ("clickstream", b"", "empty_value"),
        (
            "clickstream",
            _json(view)[:-1] + b', "x": ' + b"[" * 1000 + b"]" * 1000 + b"}",
            "too_deep",
        ),
        ("clickstream", pickle.dumps(view, protocol=0), "pickle_payload"),
    ]
