"""Taobao UserBehavior.csv (`user_id,item_id,category_id,behavior,timestamp`, no header).

pv/cart/fav become clickstream `view`/`add_to_cart`/`wishlist`; buy becomes a one-item
`orders` event. The dataset has no prices and no sessions, so both are derived here:

* price: invented, fixed per item (`item_price`), lognormal around 49 CNY;
* session: a user's events with gaps under 30 minutes share a session.

>>> item_price("1715") == item_price("1715")
True
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from itertools import islice

from backtest.importers.common import Event, Tally, lognormal_price, open_text, ts_ok

BEHAVIORS = {"pv": "view", "cart": "add_to_cart", "fav": "wishlist", "buy": "buy"}
HEADER = ["user_id", "item_id", "category_id", "behavior", "timestamp"]
SESSION_GAP_MS = 30 * 60 * 1000
CURRENCY = "CNY"
ID_PREFIX = "tb"


def item_price(item_id: str) -> float:
    """Invented unit price of a Taobao item in CNY (median 49, sigma 0.9, 0.5..50k)."""
    return lognormal_price("taobao-price", item_id)


Row = tuple[int, int, int, str, str, str, str]  # ts, source, row, user, item, category, kind


def _read(sources: Sequence[str], tally: Tally, limit: int | None) -> list[Row]:
    rows: list[Row] = []
    bad = tally.bad
    for source_no, path in enumerate(sources):
        with open_text(path) as handle:
            reader = csv.reader(handle)
            for row_no, row in enumerate(islice(reader, tally.budget(limit)), 1):
                tally.rows_read += 1
                if len(row) != 5:
                    bad["wrong_column_count"] += 1
                    continue
                user, item, category, behavior, ts_text = row
                kind = BEHAVIORS.get(behavior)
                if kind is None:
                    if row_no == 1 and row == HEADER:
                        tally.notes["header_skipped"] += 1
                    else:
                        bad["unknown_behavior"] += 1
                    continue
                try:
                    ts = int(ts_text) * 1000
                except ValueError:
                    bad["bad_timestamp"] += 1
                    continue
                if not ts_ok(ts):
                    bad["bad_timestamp"] += 1
                elif not user or not item:
                    bad["empty_id"] += 1
                else:
                    rows.append((ts, source_no, row_no, user, item, category, kind))
    # Sessions need each user's events in time order; the sample is sorted already,
    # so this sort is nearly free, and it makes unsorted slices correct too.
    rows.sort()
    return rows


def import_taobao(
    sources: Sequence[str], tally: Tally, limit: int | None = None
) -> Iterator[Event]:
    """Events from one or more UserBehavior.csv files; ids are `tb<file#>-<row#>`."""
    rows = _read(sources, tally, limit)
    prices: dict[str, float] = {}
    last_seen: dict[str, int] = {}
    session_of: dict[str, str] = {}
    for ts, source_no, row_no, user, item, category, kind in rows:
        event_id = f"{ID_PREFIX}{source_no}-{row_no}"
        price = prices.get(item)
        if price is None:
            price = prices[item] = item_price(item)
        if kind == "buy":
            line: Event = {"item_id": item, "quantity": 1, "price": price}
            if category:
                line["category"] = category
            yield {
                "topic": "orders", "order_id": event_id, "ts": ts, "user_id": user,
                "items": [line], "total": price, "currency": CURRENCY, "status": "placed",
            }  # fmt: skip
            continue
        previous = last_seen.get(user)
        if previous is None or ts - previous > SESSION_GAP_MS:
            session_of[user] = f"{ID_PREFIX}s-{user}-{ts // 1000}"
        last_seen[user] = ts
        event: Event = {
            "topic": "clickstream", "event_id": event_id, "ts": ts, "user_id": user,
            "session_id": session_of[user], "type": kind, "item_id": item, "price": price,
        }  # fmt: skip
        if category:
            event["category"] = category
        yield event
