"""Typed input events. Validation happens once, here, at the edge of the domain.

Inside the domain every `ts` is epoch milliseconds and every id a string;
`normalize` turns lenient producer input (ISO-8601, seconds, integer ids) into that.

>>> normalize({"ts": "2017-11-26T01:00:00Z", "user_id": 42})
{'ts': 1511658000000, 'user_id': '42'}
>>> ClickEvent(event_id="e2", ts=1511658000000, user_id="u", type="view")
Traceback (most recent call last):
...
ValueError: missing required field `item_id` for type 'view'
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from online_models.timeparse import MAX_TS_MS, MIN_TS_MS, to_epoch_ms

ClickType = Literal[
    "view", "click", "add_to_cart", "remove_from_cart", "wishlist", "search", "ad_click"
]
ITEM_EVENT_TYPES = frozenset({"view", "click", "add_to_cart", "remove_from_cart", "wishlist"})
OrderStatus = Literal["placed", "cancelled", "refunded"]
# What a campaign buys, i.e. what its bid multipliers are proportional to (`Campaign`).
Objective = Literal["value", "conversions", "clicks"]
ID_FIELDS = (
    "event_id",
    "user_id",
    "session_id",
    "item_id",
    "category",
    "impression_id",
    "order_id",
    "campaign_id",
    "ad_id",
)

# Bounds against absurd inputs; larger values are producer bugs, not commerce. They are
# written into the types below, so the decoder refuses values outside them and the
# published JSON Schemas state them (`minimum` / `maximum`).
MAX_ORDER_ITEMS = 500
MAX_PRICE = 1e9
MAX_QUANTITY = 1_000_000
# A campaign's ROAS target divides its value: below 1 % (spend 100 for 1 of revenue) no
# business means it, and 5e-324 turned values into inf. Multipliers above 100 are a
# typo, not a bid strategy; 1e308 overflowed every product after it.
MIN_TARGET_ROAS = 0.01
MAX_TARGET_ROAS = 1000.0
MAX_MULTIPLIER = 100.0

Money = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_PRICE)]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY)]
Roas = Annotated[float, msgspec.Meta(ge=MIN_TARGET_ROAS, le=MAX_TARGET_ROAS)]
Multiplier = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_MULTIPLIER)]


def normalize(obj: dict[str, Any]) -> dict[str, Any]:
    """Lenient producer input to the strict schema: ISO/second timestamps become epoch
    milliseconds, integer ids become strings. Raises TimestampError."""
    out = dict(obj)
    if "ts" in out:
        out["ts"] = to_epoch_ms(out["ts"])
    for key in ID_FIELDS:
        value = out.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            out[key] = str(value)
    items = out.get("items")
    if isinstance(items, list):
        out["items"] = [normalize(i) if isinstance(i, dict) else i for i in items]
    return out


def _check_ts(ts: int) -> None:
    if not MIN_TS_MS <= ts <= MAX_TS_MS:
        raise ValueError(f"timestamp {ts} is outside 2000..2100 (epoch ms)")


def _check_id(name: str, value: str) -> None:
    if not value:
        raise ValueError(f"`{name}` must not be empty")


def _non_negative(name: str, value: float | None) -> None:
    # The types' bounds hold for decoded records; this holds them for events built in
    # code (importers, tests, generators), which msgspec does not validate.
    if value is not None and not 0 <= value <= MAX_PRICE:
        raise ValueError(f"`{name}` must be within 0..{MAX_PRICE:g}, got {value}")


def _within(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"`{name}` must be within {low:g}..{high:g}, got {value}")


# gc=False on every event and output struct: they hold only strings, numbers and
# JSON-decoded containers, so can never be part of a reference cycle, and untracked
# objects make the cyclic GC cheaper on the hot path.


class ClickEvent(
    msgspec.Struct, kw_only=True, omit_defaults=True, repr_omit_defaults=True, gc=False
):
    """A clickstream event (topic `clickstream`)."""

    event_id: str
    ts: int
    user_id: str
    type: ClickType
    session_id: str | None = None
    item_id: str | None = None
    category: str | None = None
    price: Money | None = None
    query: str | None = None
    impression_id: str | None = None
    # False: the user declined personalisation (online_models/consent.py).
    consent: bool | None = None

    def __post_init__(self) -> None:
        _check_ts(self.ts)
        _check_id("user_id", self.user_id)
        _check_id("event_id", self.event_id)
        _non_negative("price", self.price)
        if self.type in ITEM_EVENT_TYPES and self.item_id is None:
            raise ValueError(f"missing required field `item_id` for type {self.type!r}")
        if self.type == "ad_click" and self.impression_id is None:
            raise ValueError("missing required field `impression_id` for type 'ad_click'")


class OrderItem(
    msgspec.Struct, kw_only=True, omit_defaults=True, repr_omit_defaults=True, gc=False
):
    item_id: str
    quantity: Quantity
    price: Money
    category: str | None = None

    def __post_init__(self) -> None:
        _check_id("item_id", self.item_id)
        if not 0 < self.quantity <= MAX_QUANTITY:
            raise ValueError(f"`quantity` must be positive, got {self.quantity}")
        _non_negative("price", self.price)


class OrderEvent(
    msgspec.Struct, kw_only=True, omit_defaults=True, repr_omit_defaults=True, gc=False
):
    """An order (topic `orders`). A refund reverses the order's revenue."""

    order_id: str
    ts: int
    user_id: str
    items: list[OrderItem]
    total: Money | None = None
    currency: str = "EUR"
    status: OrderStatus = "placed"
    consent: bool | None = None  # as in ClickEvent

    def __post_init__(self) -> None:
        _check_ts(self.ts)
        _check_id("user_id", self.user_id)
        _check_id("order_id", self.order_id)
        if len(self.items) > MAX_ORDER_ITEMS:
            raise ValueError(f"too many items: {len(self.items)} > {MAX_ORDER_ITEMS}")
        if not self.items and self.status == "placed":
            raise ValueError("`items` must not be empty for a placed order")
        if self.total is None:
            self.total = round(sum(i.price * i.quantity for i in self.items), 6)
        _non_negative("total", self.total)

    @property
    def event_id(self) -> str:
        return f"{self.order_id}:{self.status}"


class AdImpression(
    msgspec.Struct, kw_only=True, omit_defaults=True, repr_omit_defaults=True, gc=False
):
    """An ad impression served (topic `ad-impressions`); `cost` is the clearing price."""

    impression_id: str
    ts: int
    user_id: str
    campaign_id: str
    ad_id: str | None = None
    placement: str | None = None
    bid: Money = 0.0
    cost: Money = 0.0
    context: dict[str, str | int | float | bool | None] = msgspec.field(default_factory=dict)
    consent: bool | None = None  # as in ClickEvent

    def __post_init__(self) -> None:
        _check_ts(self.ts)
        _check_id("user_id", self.user_id)
        _check_id("impression_id", self.impression_id)
        _check_id("campaign_id", self.campaign_id)
        _non_negative("bid", self.bid)
        _non_negative("cost", self.cost)
        if len(self.context) > 32:
            raise ValueError("`context` holds more than 32 keys")

    @property
    def event_id(self) -> str:
        return self.impression_id


class Campaign(msgspec.Struct, kw_only=True, omit_defaults=True, repr_omit_defaults=True):
    """Campaign settings (compacted topic `campaigns`, keyed by `campaign_id`).

    `objective` is what the campaign buys, and so what its bid multipliers follow:
    "value" (p_click x p_conversion x expected revenue / target_roas, the default),
    "conversions" (p_click x p_conversion) or "clicks" (p_click alone: a campaign paid
    per click, or one whose conversions are too few to learn from).
    """

    campaign_id: str
    daily_budget: Money = 1000.0
    target_roas: Roas = 4.0
    max_multiplier: Multiplier = 3.0
    min_multiplier: Multiplier = 0.2
    active: bool = True
    category: str | None = None  # what the campaign advertises; a key model feature
    objective: Objective = "value"

    def __post_init__(self) -> None:
        _check_id("campaign_id", self.campaign_id)
        _non_negative("daily_budget", self.daily_budget)
        _within("target_roas", self.target_roas, MIN_TARGET_ROAS, MAX_TARGET_ROAS)
        _within("max_multiplier", self.max_multiplier, 0.0, MAX_MULTIPLIER)
        if not 0 <= self.min_multiplier <= self.max_multiplier:
            raise ValueError("need 0 <= min_multiplier <= max_multiplier")


InputEvent = ClickEvent | OrderEvent | AdImpression
