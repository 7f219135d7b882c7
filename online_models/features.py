"""Feature dicts for the click, conversion and revenue models.

Categorical values and their crosses are hashed into a fixed space (`2**bits`
names), so model size stays bounded however many campaigns or regions appear.
Hashing uses CRC32, which, unlike Python's `hash`, is the same in every process.

>>> c = Campaign(campaign_id="c1", category="shoes")
>>> x = impression_features(Profile(user_id="u"), c, "top", {"device": "ios"}, 0, bits=18)
>>> sorted(k for k in x if not k.startswith("h"))  # doctest: +NORMALIZE_WHITESPACE
['ad_affinity', 'ad_is_top', 'bias', 'carts', 'ctr', 'log_imps', 'monetary', 'orders',
 'tod_cos', 'tod_sin', 'views']
>>> len([k for k in x if k.startswith("h")])
8
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping

from online_models.events import Campaign
from online_models.profile import Profile

DAY_MS = 86_400_000


def hashed(name: str, bits: int) -> str:
    return f"h{zlib.crc32(name.encode()) & ((1 << bits) - 1)}"


def impression_features(
    p: Profile,
    campaign: Campaign,
    placement: str | None,
    context: Mapping[str, object],
    ts: int,
    bits: int,
) -> dict[str, float]:
    """What is known when an impression is served: user history, campaign, context."""
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
        f"c={campaign_id}|seg={p.segment}",
        f"c={campaign_id}|d={device}",
    ):
        x[hashed(name, bits)] = 1.0
    return x
