"""Olist Brazilian e-commerce CSVs (a folder) -> `orders` events with items and prices.

* One event per row of olist_orders_dataset.csv, at `order_purchase_timestamp`
  (Brazilian local time, read as America/Sao_Paulo, DST included).
* Items come from olist_order_items_dataset.csv: one row per unit, so equal
  (product, price) rows of an order merge into one line with a quantity.
  `price` is the item price in BRL; freight is not revenue and is left out.
* Categories are translated with product_category_name_translation.csv.
* user_id is `customer_unique_id` (olist_customers_dataset.csv) when known, else
  `customer_id` (Olist issues a new customer_id per order, so this undercounts repeats).

>>> STATUS["delivered"], STATUS["canceled"], STATUS["unavailable"]
('placed', 'cancelled', 'cancelled')
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

from backtest.importers.common import (
    Event,
    ImportFailed,
    LocalTime,
    Tally,
    csv_rows,
    header_index,
    parse_float,
    ts_ok,
    zone,
)

ORDERS = "olist_orders_dataset.csv"
ITEMS = "olist_order_items_dataset.csv"
PRODUCTS = "olist_products_dataset.csv"
CUSTOMERS = "olist_customers_dataset.csv"
TRANSLATION = "product_category_name_translation.csv"
CURRENCY = "BRL"
TIME_ZONE = "America/Sao_Paulo"

# Every state short of cancellation is a placed order: the purchase happened.
# "unavailable" means Olist could not fulfil it, which for revenue is a cancellation.
STATUS = {
    "created": "placed", "approved": "placed", "invoiced": "placed", "processing": "placed",
    "shipped": "placed", "delivered": "placed", "canceled": "cancelled",
    "unavailable": "cancelled",
}  # fmt: skip


def _lookup(folder: Path, name: str, key: str, value: str, tally: Tally) -> dict[str, str]:
    """A two-column mapping from an optional side table (absent: empty, and noted)."""
    path = folder / name
    if not path.is_file():
        tally.notes[f"missing_file:{name}"] += 1
        return {}
    rows = csv_rows(path)
    i_key, i_value = header_index(next(rows, []), (key, value), str(path))
    return {row[i_key]: row[i_value] for row in rows if len(row) > max(i_key, i_value)}


def _categories(folder: Path, tally: Tally) -> dict[str, str | None]:
    """product_id -> English category (Portuguese when untranslated, None when blank)."""
    english = _lookup(folder, TRANSLATION, "product_category_name",
                      "product_category_name_english", tally)  # fmt: skip
    raw = _lookup(folder, PRODUCTS, "product_id", "product_category_name", tally)
    out: dict[str, str | None] = {}
    for product, name in raw.items():
        if name and name not in english:
            tally.notes["category_untranslated"] += 1
        out[product] = english.get(name, name) or None
    return out


def _items(folder: Path, tally: Tally) -> dict[str, list[tuple[int, str, float]]]:
    """order_id -> [(order_item_id, product_id, price)]; bad rows counted."""
    path = folder / ITEMS
    rows = csv_rows(path)
    cols = header_index(next(rows, []), ("order_id", "order_item_id", "product_id", "price"),
                        str(path))  # fmt: skip
    width = max(cols) + 1
    by_order: dict[str, list[tuple[int, str, float]]] = {}
    for row in rows:
        tally.rows_read += 1
        if len(row) < width:
            tally.bad["item_wrong_column_count"] += 1
            continue
        order, seq, product, price_text = (row[i] for i in cols)
        price = parse_float(price_text)
        if price is None or price < 0:
            tally.bad["item_bad_price"] += 1
        elif not order or not product:
            tally.bad["item_empty_id"] += 1
        else:
            line = (int(seq) if seq.isdigit() else 0, product, price)
            by_order.setdefault(order, []).append(line)
    return by_order


def _lines(raw: list[tuple[int, str, float]], categories: dict[str, str | None],
           tally: Tally) -> list[Event]:  # fmt: skip
    merged: dict[tuple[str, float], Event] = {}
    for _, product, price in sorted(raw):
        line = merged.get((product, price))
        if line is not None:
            line["quantity"] += 1
            continue
        line = merged[(product, price)] = {"item_id": product, "quantity": 1, "price": price}
        if product not in categories:
            tally.notes["product_not_in_products_file"] += 1
        elif categories[product] is not None:
            line["category"] = categories[product]
    return list(merged.values())


def import_olist(sources: Sequence[str], tally: Tally, limit: int | None = None) -> Iterator[Event]:
    """Orders from one or more Olist folders; order_id is Olist's own order id."""
    parse_ts = LocalTime(zone(TIME_ZONE))
    bad, notes = tally.bad, tally.notes
    emitted: set[str] = set()
    for source in sources:
        folder = Path(source)
        if not (folder / ORDERS).is_file() or not (folder / ITEMS).is_file():
            raise ImportFailed(f"{source}: need a folder holding {ORDERS} and {ITEMS}")
        categories = _categories(folder, tally)
        customers = _lookup(folder, CUSTOMERS, "customer_id", "customer_unique_id", tally)
        items = _items(folder, tally)
        rows = csv_rows(folder / ORDERS)
        cols = header_index(next(rows, []), ("order_id", "customer_id", "order_status",
                            "order_purchase_timestamp"), str(folder / ORDERS))  # fmt: skip
        width = max(cols) + 1
        read: set[str] = set()
        for row in islice(rows, tally.budget(limit)):
            tally.rows_read += 1
            if len(row) < width:
                bad["wrong_column_count"] += 1
                continue
            order, customer, status_text, ts_text = (row[i] for i in cols)
            read.add(order)
            status = STATUS.get(status_text)
            try:
                ts = parse_ts(ts_text)
            except ValueError:
                ts = -1
            if not order or not customer:
                bad["empty_id"] += 1
            elif order in emitted:
                bad["duplicate_order"] += 1
            elif status is None:
                bad["unknown_status"] += 1
            elif not ts_ok(ts):
                bad["bad_timestamp"] += 1
            elif order not in items:
                # The published subset is not closed under joins: most orders lack items.
                bad["order_without_items"] += 1
            else:
                emitted.add(order)
                lines = _lines(items[order], categories, tally)
                user = customers.get(customer)
                if user is None:
                    notes["user_id_is_customer_id"] += 1
                yield {
                    "topic": "orders", "order_id": order, "ts": ts,
                    "user_id": user or customer, "items": lines,
                    "total": round(sum(i["price"] * i["quantity"] for i in lines), 2),
                    "currency": CURRENCY, "status": status,
                }  # fmt: skip
        orphans = sum(len(v) for k, v in items.items() if k not in read)
        if orphans:
            # With --limit, items of orders beyond the limit are expected, not bad.
            key = "items_of_orders_not_read" if limit is not None else "item_without_order"
            (notes if limit is not None else bad)[key] += orphans
