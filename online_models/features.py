"""Feature dicts for the click, conversion and revenue models.

Categorical values and their crosses are hashed into a fixed space (`2**bits`
names), so model size stays bounded however many campaigns or regions appear.
Hashing uses CRC32, which, unlike Python's `hash`, is the same in every process.

What the true click model of a market depends on can be expressed: campaign,
placement, device and region one-hots, campaign x placement, and the user's interest
in the campaign's category (`ad_affinity`, `ad_is_top`, campaign x top category).
The models learn by AdaGrad (`online_models.models`), so one-hots (0/1) and the few
dense features (scaled to about 0..5) need no further scaling.

Bid explanations need readable names: pass `names` and it receives, for each hashed
feature of this example, the name it was built from (bounded by the example, and
the same in every process, unlike a global map of names seen).

>>> c = Campaign(campaign_id="c1", category="shoes")
>>> x = impression_features(Profile(user_id="u"), c, "top", {"device": "ios"}, 0, bits=18)
>>> sorted(k for k in x if not k.startswith("h"))  # doctest: +NORMALIZE_WHITESPACE
['ad_affinity', 'ad_is_top', 'bias', 'carts', 'ctr', 'log_imps', 'monetary', 'orders',
 'tod_cos', 'tod_sin', 'views']
>>> len([k for k in x if k.startswith("h")])
8
>>> names = {}
>>> x = impression_features(Profile(user_id="u"), c, "top", {"device": "ios"}, 0, 18, names)
>>> sorted(names.values())[:3]
['campaign=c1', 'campaign=c1 & device=ios', 'campaign=c1 & placement=top']
>>> feature_name("ad_affinity", names)
"interest in the campaign's category"
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Mapping

from online_models.events import Campaign
from online_models.profile import Profile

DAY_MS = 86_400_000


DENSE_NAMES = {
    "bias": "bias",
    "ad_affinity": "interest in the campaign's category",
    "ad_is_top": "campaign's category is the user's top",
    "ctr": "user's click-through rate",
    "log_imps": "ads the user has seen",
    "views": "user's recent views",
    "carts": "user's recent add-to-carts",
    "orders": "user's orders",
    "monetary": "user's spend",
    "tod_sin": "time of day (sine)",
    "tod_cos": "time of day (cosine)",
}
# How fast the click / conversion models learn each feature, as a multiple of the
# learning rate (hashed one-hots: 1). Measured on the known-model market, the
# synthetic stream and Open Bandit (docs/architecture.md, "Models"): interest in the
# advertised category is the strongest signal of a user and needs a fast rate to be
# learned from the few positives of a young model; the ever-present history features
# (activity, spend, time of day) each take a small step on every label, and at the full
# rate their noise costs more log-loss than they earn; `bias` is not learned at all,
# the model's offset (the running base rate) is its intercept.
LEARNING_RATE_SCALE = {
    "bias": 0.0,
    "ad_affinity": 10.0,
    "ad_is_top": 10.0,
    "ctr": 0.3,
    "log_imps": 0.3,
    "views": 0.3,
    "carts": 0.3,
    "orders": 0.3,
    "monetary": 0.3,
    "tod_sin": 0.3,
    "tod_cos": 0.3,
}
# Readable form of the parts of a hashed feature's name.
_PARTS = {"c": "campaign", "p": "placement", "d": "device", "r": "region",
          "top": "top_category", "seg": "segment"}  # fmt: skip


# Pure functions of a few thousand distinct names (campaigns x placements x ...), so
# a bounded cache saves most of their cost on every impression and bid.
@functools.lru_cache(maxsize=65_536)
def hashed(name: str, bits: int) -> str:
    return f"h{zlib.crc32(name.encode()) & ((1 << bits) - 1)}"


@functools.lru_cache(maxsize=16_384)
def readable(name: str) -> str:
    """'c=c1|p=top' -> 'campaign=c1 & placement=top'."""
    out = []
    for part in name.split("|"):
        key, _, value = part.partition("=")
        out.append(f"{_PARTS.get(key, key)}={value}")
    return " & ".join(out)


def feature_name(key: str, names: Mapping[str, str]) -> str:
    """The readable name of a feature key of an example built with `names`."""
    return names.get(key) or DENSE_NAMES.get(key, key)


def impression_features(
    p: Profile,
    campaign: Campaign,
    placement: str | None,
    context: Mapping[str, object],
    ts: int,
    bits: int,
    names: dict[str, str] | None = None,
    segment: str | None = None,
) -> dict[str, float]:
    """What is known when an impression is served: user history, campaign, context.
    `segment`: the label to use for the user's segment (default: the profile's)."""
    campaign_id = campaign.campaign_id
    total_affinity = sum(p.categories.values())
    ad_affinity = (
        p.categories.get(campaign.category, 0.0) / total_affinity
        if campaign.category is not None and total_affinity > 0
        else 0.0
    )
    hour = (ts % DAY_MS) / DAY_MS * 2 * math.pi
    top = max(p.categories.items(), key=lambda kv: (kv[1], kv[0]))[0] if p.categories else "-"
    device = str(context.get("device", "-"))
    region = str(context.get("region", "-"))
    place = placement or "-"
    x = {
        "bias": 1.0,
        "ad_affinity": ad_affinity,
        "ad_is_top": 1.0 if campaign.category is not None and campaign.category == top else 0.0,
        "ctr": p.ctr * 10,
        "log_imps": math.log1p(p.ad_impressions),
        "views": math.log1p(p.decayed.get("view", 0.0)),
        "carts": math.log1p(p.decayed.get("add_to_cart", 0.0)),
        "orders": math.log1p(p.orders),
        "monetary": math.log1p(p.revenue) / 5,
        "tod_sin": math.sin(hour),
        "tod_cos": math.cos(hour),
    }
    for name in (
        f"c={campaign_id}",
        f"p={place}",
        f"d={device}",
        f"r={region}",
        f"c={campaign_id}|p={place}",
        f"c={campaign_id}|top={top}",
        f"c={campaign_id}|seg={p.segment if segment is None else segment}",
        f"c={campaign_id}|d={device}",
    ):
        key = hashed(name, bits)
        x[key] = 1.0
        if names is not None:
            names[key] = readable(name)
    return x
