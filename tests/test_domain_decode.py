"""decode_input: bytes from a topic become a typed event or a dead-letter reason.

The reason string is what operators see on the dead-letter topic and in the
`reason` metric label, so each class of bad input must map to its own stable reason,
and lenient-but-valid producer input must be accepted and normalised.
"""

from __future__ import annotations

import json
import pickle
import random
from typing import Any

import orjson
import pytest

from online_models.decode import (
    CAMPAIGNS,
    CLICKSTREAM,
    IMPRESSIONS,
    ORDERS,
    REASONS,
    DecodeError,
    decode_dict,
    decode_input,
    nesting_depth,
)
from online_models.events import AdImpression, Campaign, ClickEvent, OrderEvent, OrderItem

TS = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def raw(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def view(**over: Any) -> dict[str, Any]:
    return {"event_id": "e1", "ts": TS, "user_id": "u1", "type": "view", "item_id": "i1", **over}


def line(**over: Any) -> dict[str, Any]:
    return {"item_id": "i1", "quantity": 1, "price": 9.5, **over}


def order(**over: Any) -> dict[str, Any]:
    return {"order_id": "o1", "ts": TS, "user_id": "u1", "items": [line()], **over}


def impression(**over: Any) -> dict[str, Any]:
    return {
        "impression_id": "im1",
        "ts": TS,
        "user_id": "u1",
        "campaign_id": "c1",
        "cost": 0.25,
        **over,
    }


def reason_of(stream: str, data: bytes, **kw: Any) -> str:
    with pytest.raises(DecodeError) as info:
        decode_input(stream, data, **kw)
    assert info.value.reason in REASONS, "every reason must be one of the published REASONS"
    assert str(info.value).startswith(info.value.reason + ": ")
    return info.value.reason


# Dead-letter reasons -------------------------------------------------------------


@pytest.mark.parametrize("data", [b'{"event_id": "x", "ts": ', b"not json", b"\xff\xfe"])
def test_not_json(data: bytes) -> None:
    """Truncated, empty or binary bytes are `not_json`: the operator learns the producer
    sends garbage, not that a field is wrong."""
    assert reason_of(CLICKSTREAM, data) == "not_json"


@pytest.mark.parametrize("data", [b"", None])
def test_empty_value_and_tombstone(data: bytes | None) -> None:
    """A null value (a tombstone) or empty bytes is `empty_value`, not an event."""
    assert reason_of(CLICKSTREAM, data) == "empty_value"  # type: ignore[arg-type]


@pytest.mark.parametrize("stream", [CLICKSTREAM, "orders", "ad-impressions"])
@pytest.mark.parametrize("depth", [33, 1000, 30_000])
def test_deep_nesting_is_refused_before_any_parse(stream: str, depth: int) -> None:
    """Parsers recurse per nesting level (msgspec raised RecursionError at ~1,000):
    depth is measured iteratively first, and brackets inside strings do not count."""
    head = b'{"event_id": "e", "ts": 1700000000000, "user_id": "u", "x": '
    data = head + b"[" * depth + b"]" * depth + b"}"
    assert reason_of(stream, data, max_bytes=1 << 20) == "too_deep"
    in_string = head + b'"' + b"[{" * 5000 + b'"}'
    assert reason_of(stream, in_string, max_bytes=1 << 20) != "too_deep"


def test_nesting_at_the_limit_is_parsed() -> None:
    ok = b'{"event_id": "e", "ts": 1700000000000, "user_id": "u", "type": "search", "x": '
    depth = 31  # plus the enclosing object: 32 levels, the default limit
    ev = decode_input(CLICKSTREAM, ok + b"[" * depth + b"]" * depth + b"}")
    assert ev.type == "search"


@pytest.mark.parametrize("data", [b"[1, 2, 3]", b'"a string"', b"null", b"42", b"true"])
def test_not_object(data: bytes) -> None:
    """Valid JSON that is not an object (array, string, null, number) is `not_object`."""
    assert reason_of(ORDERS, data) == "not_object"


@pytest.mark.parametrize(
    ("stream", "obj"),
    [
        (CLICKSTREAM, {k: v for k, v in view().items() if k != "user_id"}),
        (CLICKSTREAM, {k: v for k, v in view().items() if k != "event_id"}),
        (CLICKSTREAM, {k: v for k, v in view().items() if k != "ts"}),
        (ORDERS, {k: v for k, v in order().items() if k != "order_id"}),
        (ORDERS, order(items=[{"quantity": 1, "price": 2.0}])),  # line without item_id
        (IMPRESSIONS, {k: v for k, v in impression().items() if k != "campaign_id"}),
        (CAMPAIGNS, {"daily_budget": 10.0}),
    ],
)
def test_missing_required_field(stream: str, obj: dict[str, Any]) -> None:
    """A record without a required key is `missing_field` on every stream."""
    assert reason_of(stream, raw(obj)) == "missing_field"


@pytest.mark.parametrize("type_", ["view", "click", "add_to_cart", "remove_from_cart", "wishlist"])
def test_item_events_require_item_id(type_: str) -> None:
    """Item events without `item_id` cannot update recent items or co-visitation, so
    they are `missing_field` (a search, which has no item, is fine)."""
    obj = {k: v for k, v in view(type=type_).items() if k != "item_id"}
    assert reason_of(CLICKSTREAM, raw(obj)) == "missing_field"
    search = decode_input(CLICKSTREAM, raw({**obj, "type": "search"}))
    assert isinstance(search, ClickEvent) and search.item_id is None


def test_ad_click_requires_impression_id() -> None:
    """An `ad_click` without `impression_id` cannot be joined to its impression, so it
    would silently lose a positive label: it is `missing_field` instead."""
    obj = {k: v for k, v in view(type="ad_click").items() if k != "item_id"}
    with pytest.raises(DecodeError) as info:
        decode_input(CLICKSTREAM, raw(obj))
    assert info.value.reason == "missing_field"
    assert "impression_id" in info.value.detail
    ok = decode_input(CLICKSTREAM, raw({**obj, "impression_id": "im1"}))
    assert ok.impression_id == "im1"


@pytest.mark.parametrize(
    ("stream", "obj"),
    [
        (CLICKSTREAM, view(price="cheap")),
        (CLICKSTREAM, view(user_id=True)),
        (CLICKSTREAM, view(type=5)),
        (ORDERS, order(items="i1")),
        (ORDERS, order(items=[line(quantity=1.5)])),
        (IMPRESSIONS, impression(cost="free")),
        (CAMPAIGNS, {"campaign_id": "c1", "active": "yes"}),
    ],
)
def test_wrong_type(stream: str, obj: dict[str, Any]) -> None:
    """A field of the wrong JSON type (string price, boolean id, fractional quantity)
    is `wrong_type`, distinct from a missing field."""
    assert reason_of(stream, raw(obj)) == "wrong_type"


@pytest.mark.parametrize(
    ("stream", "obj"),
    [(CLICKSTREAM, view(type="teleport")), (ORDERS, order(status="lost"))],
)
def test_unknown_type(stream: str, obj: dict[str, Any]) -> None:
    """An event type or order status outside the schema's enum is `unknown_type`: it
    usually means a producer shipped a new type before the consumer knows it."""
    assert reason_of(stream, raw(obj)) == "unknown_type"


@pytest.mark.parametrize(
    ("stream", "obj"),
    [
        (CLICKSTREAM, view(price=-3.0)),
        (ORDERS, order(items=[line(price=-1.0)])),
        (ORDERS, order(items=[line(quantity=-2)])),
        (ORDERS, order(items=[line(quantity=0)])),
        (ORDERS, order(total=-5.0)),
        (IMPRESSIONS, impression(cost=-0.5)),
        (IMPRESSIONS, impression(bid=-0.5)),
        (CAMPAIGNS, {"campaign_id": "c1", "daily_budget": -1.0}),
    ],
)
def test_negative_value(stream: str, obj: dict[str, Any]) -> None:
    """Negative prices, quantities and costs are `negative_value`: a negative cost
    would make budget pacing spend money it never spent."""
    assert reason_of(stream, raw(obj)) == "negative_value"


@pytest.mark.parametrize(
    ("stream", "obj"),
    [
        (CLICKSTREAM, view(price=1e10)),  # beyond MAX_PRICE: a unit bug, not commerce
        (ORDERS, order(items=[line(quantity=2_000_000)])),
        (IMPRESSIONS, impression(cost=1e308)),
        (CAMPAIGNS, {"campaign_id": "c1", "target_roas": 5e-324}),  # value / 5e-324 = inf
        (CAMPAIGNS, {"campaign_id": "c1", "target_roas": 0}),
        (CAMPAIGNS, {"campaign_id": "c1", "target_roas": 1e6}),
        (CAMPAIGNS, {"campaign_id": "c1", "min_multiplier": 1e308, "max_multiplier": 1e308}),
        (CAMPAIGNS, {"campaign_id": "c1", "daily_budget": 1e300}),
    ],
)
def test_out_of_range(stream: str, obj: dict[str, Any]) -> None:
    """Values beyond the bounds written in the schema are refused at decode, before
    any of them can reach a model, a bid or a stored state."""
    assert reason_of(stream, raw(obj)) == "out_of_range"


def test_bounds_are_published_in_the_schema() -> None:
    """The limits the decoder enforces are the ones the JSON Schema states."""
    from online_models.schemas import schemas

    props = schemas()["campaigns"]["$defs"]["Campaign"]["properties"]
    assert (props["target_roas"]["minimum"], props["target_roas"]["maximum"]) == (0.01, 1000)
    assert props["max_multiplier"]["maximum"] == 100
    assert props["daily_budget"]["maximum"] == 1e9


@pytest.mark.parametrize(
    "ts",
    [
        "yesterday at noon",  # unparseable
        "2017-11-26T01:00:00",  # naive ISO: no zone, so which instant?
        "1970-01-02T00:00:00Z",  # absurdly early
        "2300-01-01T00:00:00Z",  # absurdly late
        86_400,  # 1970 in seconds
        0,
        True,
        None,
        [1],
    ],
)
def test_bad_timestamp(ts: Any) -> None:
    """Unparseable, zone-less or implausible (outside 2000..2100) timestamps are
    `bad_timestamp`: event time drives every window, so a guess would corrupt labels."""
    assert reason_of(CLICKSTREAM, raw(view(ts=ts))) == "bad_timestamp"
    assert reason_of(ORDERS, raw(order(ts=ts))) == "bad_timestamp"


def test_naive_iso_message_names_the_missing_zone() -> None:
    """The dead-letter detail tells the producer *why* a naive time was refused."""
    with pytest.raises(DecodeError) as info:
        decode_input(CLICKSTREAM, raw(view(ts="2017-11-26T01:00:00")))
    assert "time zone" in info.value.detail


def test_oversized_with_custom_limit() -> None:
    """A record over `max_bytes` is `oversized` before any parsing (so a huge payload
    costs nothing to refuse); a record of exactly `max_bytes` is accepted."""
    data = raw(view(query="x" * 200))
    assert reason_of(CLICKSTREAM, data, max_bytes=len(data) - 1) == "oversized"
    assert decode_input(CLICKSTREAM, data, max_bytes=len(data)).query == "x" * 200
    # Oversize wins even over otherwise-fatal content: nothing is parsed.
    assert reason_of(CLICKSTREAM, b"[" * 100, max_bytes=50) == "oversized"


def test_default_limit_is_64_kib() -> None:
    """With the default limit, a 70 kB record is `oversized`."""
    assert reason_of(CLICKSTREAM, raw(view(query="x" * 70_000))) == "oversized"


def test_too_many_items() -> None:
    """An order with more than 500 lines is `too_many_items`; 500 is still accepted."""
    assert reason_of(ORDERS, raw(order(items=[line()] * 501))) == "too_many_items"
    ok = decode_input(ORDERS, raw(order(items=[line()] * 500)))
    assert len(ok.items) == 500
    assert ok.total == pytest.approx(4750.0)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("payload", [view(), [1, 2, 3]], ids=["dict", "list"])
def test_pickle_payload_every_protocol(protocol: int, payload: Any) -> None:
    """Pickles of every protocol (0..5) are refused as `pickle_payload` and never
    unpickled: unpickling untrusted bytes executes code."""
    assert reason_of(CLICKSTREAM, pickle.dumps(payload, protocol=protocol)) == "pickle_payload"


def test_pickle_is_never_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a pickle whose content would validate is not passed to pickle.loads."""

    def boom(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("decode_input must never unpickle")

    monkeypatch.setattr(pickle, "loads", boom)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(DecodeError):
            decode_input(CLICKSTREAM, pickle.dumps(view(), protocol=protocol))


# Lenient but valid input -----------------------------------------------------------


@pytest.mark.parametrize(
    "ts",
    [
        TS,
        TS // 1000,  # epoch seconds
        TS / 1000,  # epoch seconds as float
        TS * 1000,  # epoch microseconds
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:20z",
        "2023-11-14T23:13:20+01:00",
        "2023-11-14T17:13:20-05:00",
        "2023-11-14T22:13:20.000+00:00",
    ],
)
def test_lenient_timestamps_normalise_to_epoch_ms(ts: Any) -> None:
    """ISO-8601 with a zone, seconds, ms and us all denote 2023-11-14T22:13:20Z and
    become the same epoch milliseconds: every window downstream uses this one unit."""
    ev = decode_input(CLICKSTREAM, raw(view(ts=ts)))
    assert ev.ts == TS


def test_fractional_seconds_keep_milliseconds() -> None:
    """1700000000.5 seconds is 1700000000500 ms, not rounded to a whole second."""
    assert decode_input(CLICKSTREAM, raw(view(ts=1_700_000_000.5))).ts == TS + 500


def test_integer_ids_become_strings() -> None:
    """Producers that send numeric ids are accepted; ids become strings so that user
    42 and user "42" are one profile (and one Kafka key)."""
    ev = decode_input(CLICKSTREAM, raw(view(user_id=42, item_id=7, session_id=3, event_id=9)))
    assert (ev.user_id, ev.item_id, ev.session_id, ev.event_id) == ("42", "7", "3", "9")
    o = decode_input(ORDERS, raw(order(order_id=12, user_id=42, items=[line(item_id=9)])))
    assert (o.order_id, o.user_id, o.items[0].item_id) == ("12", "42", "9")
    im = decode_input(IMPRESSIONS, raw(impression(impression_id=5, campaign_id=3)))
    assert (im.impression_id, im.campaign_id) == ("5", "3")


def test_order_total_computed_when_absent() -> None:
    """Without `total`, the order's revenue is sum(price * quantity): 2*9.5 + 3*0.1."""
    o = decode_input(
        ORDERS, raw(order(items=[line(quantity=2), line(item_id="i2", price=0.1, quantity=3)]))
    )
    assert isinstance(o, OrderEvent)
    assert o.total == pytest.approx(19.3)
    assert o.event_id == "o1:placed"
    # An explicit total (e.g. after a discount) is kept as sent.
    assert decode_input(ORDERS, raw(order(total=5.0))).total == 5.0


def test_refund_may_omit_items() -> None:
    """A refund carries no lines; its total defaults to 0 and its event id differs from
    the placed order's, so the two are never taken for duplicates."""
    r = decode_input(ORDERS, raw(order(items=[], status="refunded", total=9.5)))
    assert (r.status, r.total, r.event_id) == ("refunded", 9.5, "o1:refunded")
    assert reason_of(ORDERS, raw(order(items=[]))) == "invalid_value"  # placed needs lines


def test_valid_records_of_each_stream() -> None:
    """The four streams decode into their typed events with defaults filled in."""
    assert decode_input(CLICKSTREAM, raw(view())) == ClickEvent(
        event_id="e1", ts=TS, user_id="u1", type="view", item_id="i1"
    )
    assert decode_input(ORDERS, raw(order())) == OrderEvent(
        order_id="o1",
        ts=TS,
        user_id="u1",
        items=[OrderItem(item_id="i1", quantity=1, price=9.5)],
        total=9.5,
    )
    im = decode_input(IMPRESSIONS, raw(impression(context={"device": "ios"})))
    assert im == AdImpression(
        impression_id="im1",
        ts=TS,
        user_id="u1",
        campaign_id="c1",
        cost=0.25,
        context={"device": "ios"},
    )
    assert im.event_id == "im1"


def test_campaigns_decode_with_defaults_and_validation() -> None:
    """Campaign settings decode with documented defaults; inconsistent settings
    (min above max, non-positive ROAS target) are refused."""
    c = decode_input(
        CAMPAIGNS, raw({"campaign_id": "c1", "daily_budget": 100, "category": "shoes"})
    )
    assert c == Campaign(campaign_id="c1", daily_budget=100.0, category="shoes")
    assert (c.target_roas, c.max_multiplier, c.min_multiplier, c.active) == (4.0, 3.0, 0.2, True)
    assert decode_input(CAMPAIGNS, raw({"campaign_id": 5})).campaign_id == "5"
    assert reason_of(CAMPAIGNS, raw({"campaign_id": "c1", "target_roas": 0})) == "out_of_range"
    assert (
        reason_of(CAMPAIGNS, raw({"campaign_id": "c1", "min_multiplier": 2, "max_multiplier": 1}))
        == "invalid_value"
    )


def test_unknown_extra_fields_are_ignored() -> None:
    """Producers may add fields; consumers must not dead-letter them (forward compat)."""
    assert decode_input(CLICKSTREAM, raw(view(new_field={"x": 1}))).item_id == "i1"


def test_decode_dict_matches_decode_input() -> None:
    """Importers use decode_dict on parsed objects; it must agree with the byte path,
    including the reason for a bad timestamp."""
    obj = view(ts="2023-11-14T22:13:20Z", user_id=42)
    assert decode_dict(CLICKSTREAM, obj) == decode_input(CLICKSTREAM, raw(obj))
    with pytest.raises(DecodeError) as info:
        decode_dict(CLICKSTREAM, view(ts="2017-11-26T01:00:00"))
    assert info.value.reason == "bad_timestamp"


def _depth_by_scanning(raw: bytes) -> int:
    """Reference: a plain character scanner of JSON strings and brackets."""
    depth = deepest = 0
    inside = escaped = False
    for c in raw:
        if inside:
            if escaped:
                escaped = False
            elif c == ord("\\"):
                escaped = True
            elif c == ord('"'):
                inside = False
        elif c == ord('"'):
            inside = True
        elif c in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in b"]}":
            depth -= 1
    return deepest


def test_nesting_depth_matches_a_plain_scanner_on_random_json() -> None:
    rng = random.Random(7)
    tricky = ['a\\"[', "\\\\", "]]}", 'x\\\\"{', "{[", 1, None]

    def value(level: int) -> Any:
        if level > 6 or rng.random() < 0.3:
            return rng.choice(tricky)
        if rng.random() < 0.5:
            return [value(level + 1) for _ in range(rng.randint(0, 3))]
        return {f"k{i}{rng.choice(tricky)}": value(level + 1) for i in range(rng.randint(0, 3))}

    for _ in range(2000):
        raw = orjson.dumps(value(0))
        assert nesting_depth(raw) == _depth_by_scanning(raw), raw
