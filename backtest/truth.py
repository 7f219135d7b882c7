"""A synthetic market whose clicks and conversions follow a known model.

The real logs in `../shared/data` carry clicks but no true probabilities, so they cannot
tell how close a learned model is to the best possible one, nor how much of the
possible gain a bidding policy captures. This stream can: every impression's true
click probability, and the true probability that a click converts, are recorded
beside the events (`TruthStream.p_click`, `.p_conversion`), so tests and benchmarks
compare what the engine learns (AUC, calibration) and what its bids buy with the
truth (an oracle bids in proportion to the true value).

The true model, stated so it can be checked by hand:

* Users have a favourite category (and browse it: views in the clickstream reveal it
  to the engine's profile) and a region; each session has a device.
* Click logit = `base_logit` + campaign effect + placement effect + device effect +
  region effect + campaign x placement effect + `interest_effect` when the campaign
  advertises the user's favourite category. Effects are drawn once from the seed
  (normal, `effect_sd`), so campaign, placement, device and region all matter, and
  every term is one the engine's features (`online_models/features.py`) can express.
* A click converts with probability sigmoid(`conversion_logit` + campaign effect +
  interest effect); the order follows after an exponential delay (mean
  `conversion_delay_mean_s`, always inside the 24 h attribution window) with a
  lognormal total around the campaign's order value.
* The market price of an impression (the highest competing bid) is lognormal,
  `price_median` x exp(`price_sigma` x N(0, 1)), independent of the click
  probability, and recorded as the impression's `cost`.
* Each campaign's daily budget is `budget_fraction` x the market price of all its
  impressions per day, published on the `campaigns` topic: the engine, the bidding
  simulation and the oracle all see one budget.

>>> s = generate_truth(TruthParams(n_users=40, days=1, seed=3))
>>> topics = {t for t, _ in s.events}
>>> sorted(topics)
['ad-impressions', 'campaigns', 'clickstream', 'orders']
>>> imps = [e for t, e in s.events if t == "ad-impressions"]
>>> all(0 < s.p_click[e["impression_id"]] < 1 for e in imps)
True
>>> s.events == generate_truth(TruthParams(n_users=40, days=1, seed=3)).events
True
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from backtest.jsonl import write_events

DAY_MS = 86_400_000
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a Thursday
CATEGORIES = ("shoes", "electronics", "books", "home", "beauty", "sports", "toys", "garden")
PLACEMENTS = ("top", "sidebar", "feed", "footer")
DEVICES = ("ios", "android", "desktop")
REGIONS = ("north", "south", "east", "west", "centre")


@dataclass(frozen=True)
class TruthParams:
    """Size and shape of the market; every number the truth depends on."""

    n_users: int = 3000
    days: int = 4
    n_campaigns: int = 6
    sessions_per_user_day: float = 2.0
    impressions_per_session: float = 3.0
    base_logit: float = -4.2  # ~1.5 % click-through before effects
    effect_sd: float = 0.6
    interest_effect: float = 1.4
    conversion_logit: float = -2.4  # ~8 % of clicks convert before effects
    conversion_delay_mean_s: float = 3 * 3600.0
    order_value_median: float = 60.0
    price_median: float = 0.5
    price_sigma: float = 0.5
    budget_fraction: float = 0.5
    # What the campaigns buy (`Campaign.objective`): the oracle bids on true clicks,
    # so "clicks" campaigns are the ones it is the best policy for; "value" ones are
    # measured against the value oracle (true p_click x p_conversion) too.
    objective: str = "clicks"
    seed: int = 1


@dataclass
class TruthStream:
    """Events in event-time order, with the truth behind each impression."""

    events: list[tuple[str, dict[str, Any]]]
    p_click: dict[str, float] = field(default_factory=dict)  # impression id -> P(click)
    p_conversion: dict[str, float] = field(default_factory=dict)  # id -> P(order | click)
    budgets: dict[str, float] = field(default_factory=dict)  # campaign -> daily budget

    def impressions(self) -> Iterator[dict[str, Any]]:
        return (e for t, e in self.events if t == "ad-impressions")


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


class _Truth:
    def __init__(self, p: TruthParams) -> None:
        rng = self.rng = random.Random(p.seed)
        self.p = p
        sd = p.effect_sd
        self.campaigns = [f"c{i + 1}" for i in range(p.n_campaigns)]
        self.category = {c: CATEGORIES[i % len(CATEGORIES)] for i, c in enumerate(self.campaigns)}
        self.c_eff = {c: rng.gauss(0, sd) for c in self.campaigns}
        self.p_eff = {x: rng.gauss(0, sd) for x in PLACEMENTS}
        self.d_eff = {x: rng.gauss(0, sd) for x in DEVICES}
        self.r_eff = {x: rng.gauss(0, sd) for x in REGIONS}
        self.cp_eff = {(c, x): rng.gauss(0, sd / 2) for c in self.campaigns for x in PLACEMENTS}
        self.conv_eff = {c: rng.gauss(0, sd / 2) for c in self.campaigns}
        self.value = {c: p.order_value_median * math.exp(rng.gauss(0, 0.5)) for c in self.campaigns}
        self.fav = [rng.randrange(len(CATEGORIES)) for _ in range(p.n_users)]
        self.region = [rng.choice(REGIONS) for _ in range(p.n_users)]

    def p_click(self, u: int, c: str, placement: str, device: str) -> float:
        interest = self.p.interest_effect if CATEGORIES[self.fav[u]] == self.category[c] else 0.0
        z = (self.p.base_logit + self.c_eff[c] + self.p_eff[placement] + self.d_eff[device]
             + self.r_eff[self.region[u]] + self.cp_eff[(c, placement)] + interest)  # fmt: skip
        return _sigmoid(z)

    def p_conversion(self, u: int, c: str) -> float:
        interest = (
            0.5 * self.p.interest_effect if CATEGORIES[self.fav[u]] == self.category[c] else 0.0
        )
        return _sigmoid(self.p.conversion_logit + self.conv_eff[c] + interest)


def generate_truth(params: TruthParams | None = None) -> TruthStream:
    """The whole stream, deterministic for its parameters (seeded)."""
    p = params or TruthParams()
    w = _Truth(p)
    rng = w.rng
    heap: list[tuple[int, int, str, dict[str, Any]]] = []
    seq = 0

    def emit(topic: str, event: dict[str, Any]) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (int(event["ts"]), seq, topic, event))

    out = TruthStream(events=[])
    spend: dict[str, float] = dict.fromkeys(w.campaigns, 0.0)
    end_ms = T0_MS + p.days * DAY_MS
    n = 0
    for u in range(p.n_users):
        user = f"tu{u}"
        t = T0_MS + int(rng.expovariate(p.sessions_per_user_day / DAY_MS))
        while t < end_ms:
            device = rng.choice(DEVICES)
            fav = CATEGORIES[w.fav[u]]
            for v in range(1 + int(rng.expovariate(1 / 3))):  # browsing reveals the interest
                cat = fav if rng.random() < 0.8 else rng.choice(CATEGORIES)
                emit("clickstream", {"event_id": f"{user}-{t}-v{v}", "ts": t, "user_id": user,
                                     "type": "view", "item_id": f"{cat}-{rng.randrange(200)}",
                                     "category": cat, "price": 20.0})  # fmt: skip
                t += rng.randint(5_000, 40_000)
            for _ in range(int(rng.expovariate(1 / p.impressions_per_session)) + 1):
                n += 1
                imp_id, c, place = f"ti{n}", rng.choice(w.campaigns), rng.choice(PLACEMENTS)
                price = round(p.price_median * math.exp(p.price_sigma * rng.gauss(0, 1)), 6)
                spend[c] += price
                pc, pv = w.p_click(u, c, place, device), w.p_conversion(u, c)
                out.p_click[imp_id], out.p_conversion[imp_id] = pc, pv
                emit("ad-impressions", {"impression_id": imp_id, "ts": t, "user_id": user,
                                        "campaign_id": c, "placement": place, "cost": price,
                                        "context": {"device": device,
                                                    "region": w.region[u]}})  # fmt: skip
                if rng.random() < pc:
                    tc = t + rng.randint(1_000, 120_000)
                    emit("clickstream", {"event_id": f"{imp_id}-click", "ts": tc, "user_id": user,
                                         "type": "ad_click", "impression_id": imp_id})  # fmt: skip
                    if rng.random() < pv:
                        delay = min(rng.expovariate(1 / p.conversion_delay_mean_s), 23 * 3600.0)
                        total = round(w.value[c] * math.exp(rng.gauss(0, 0.4)), 2)
                        emit("orders", {"order_id": f"{imp_id}-order", "user_id": user,
                                        "ts": tc + int(delay * 1000), "total": total,
                                        "items": [{"item_id": f"{w.category[c]}-ad",
                                                   "quantity": 1, "price": total,
                                                   "category": w.category[c]}]})  # fmt: skip
                t += rng.randint(2_000, 30_000)
            t += int(rng.expovariate(p.sessions_per_user_day / DAY_MS)) + 60_000
    for c in w.campaigns:
        out.budgets[c] = round(p.budget_fraction * spend[c] / p.days, 6)
        setting = {"campaign_id": c, "daily_budget": out.budgets[c], "category": w.category[c],
                   "target_roas": 4.0, "min_multiplier": 0.0, "max_multiplier": 4.0,
                   "objective": p.objective}  # fmt: skip
        out.events.append(("campaigns", setting))
    while heap:
        ts, _, topic, event = heapq.heappop(heap)
        if ts < end_ms + DAY_MS:  # late conversions of the last day stay in the stream
            out.events.append((topic, event))
    return out


def write_truth(stream: TruthStream, events_path: str | Path, truth_path: str | Path) -> None:
    """Events as the replay reads them (gzipped JSON lines, `topic` in each line) and
    the truth as one JSON object (impression id -> [p_click, p_conversion], budgets)."""
    write_events(events_path, [{"topic": t, **e} for t, e in stream.events])
    truth = {
        "p": {i: [pc, stream.p_conversion[i]] for i, pc in stream.p_click.items()},
        "budgets": stream.budgets,
    }
    Path(truth_path).write_bytes(orjson.dumps(truth))


def read_truth(
    truth_path: str | Path,
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """(p_click, p_conversion, budgets) as written by `write_truth`."""
    truth = orjson.loads(Path(truth_path).read_bytes())
    p = truth["p"]
    return ({i: v[0] for i, v in p.items()}, {i: v[1] for i, v in p.items()}, truth["budgets"])
