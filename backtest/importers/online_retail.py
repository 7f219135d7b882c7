"""UCI Online Retail (OnlineRetail.csv, one row per invoice line) -> one `orders` per invoice.

* Invoices starting with "C" are cancellations (negative quantities): status
  `refunded`, quantities made positive. They do not name the invoice they reverse.
* Rows without CustomerID are kept: the invoice gets the guest user
  `guest-<InvoiceNo>`, because dropping them would lose about a fifth of the sample's revenue.
* Negative quantities outside a cancellation are stock write-offs, not sales,
  and are counted as bad rows (`stock_adjustment`).
* InvoiceDate is UK local time (Europe/London): GMT = UTC in winter, BST in summer.
* The event schema caps an order at 500 lines; longer invoices are split into
  consecutive parts `<InvoiceNo>-<k>of<n>` (noted), so no revenue is lost.

>>> customer_id("17850.0"), customer_id("")
('17850', None)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice

from backtest.importers.common import (
    Event,
    LocalTime,
    Tally,
    csv_rows,
    header_index,
    parse_float,
    ts_ok,
    zone,
)
from online_models.events import MAX_ORDER_ITEMS

COLUMNS = ("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID")
CURRENCY = "GBP"
TIME_ZONE = "Europe/London"


def customer_id(text: str) -> str | None:
    """CustomerID as a string id; the CSV stores it as a float ("17850.0")."""
    text = text.strip()
    return text.removesuffix(".0") or None


class _Invoice:
    __slots__ = ("customer", "lines", "ts")

    def __init__(self, ts: int, customer: str | None) -> None:
        self.ts = ts
        self.customer = customer
        self.lines: list[Event] = []


def _read(sources: Sequence[str], tally: Tally, limit: int | None) -> dict[str, _Invoice]:
    parse_ts = LocalTime(zone(TIME_ZONE))
    bad, notes = tally.bad, tally.notes
    invoices: dict[str, _Invoice] = {}
    for path in sources:
        rows = csv_rows(path)
        cols = header_index(next(rows, []), COLUMNS, path)
        width = max(cols) + 1
        for row in islice(rows, tally.budget(limit)):
            tally.rows_read += 1
            if len(row) < width:
                bad["wrong_column_count"] += 1
                continue
            invoice, code, qty_text, date, price_text, customer_text = (row[i] for i in cols)
            quantity = parse_float(qty_text)
            price = parse_float(price_text)
            try:
                ts = parse_ts(date)
            except ValueError:
                ts = -1
            cancel = invoice.startswith("C")
            if not invoice or not code:
                bad["empty_id"] += 1
            elif not (invoice.isdigit() or (cancel and invoice[1:].isdigit())):
                bad["unknown_invoice_kind"] += 1  # e.g. "A..." bad-debt adjustments
            elif quantity is None or quantity != int(quantity):
                bad["bad_quantity"] += 1
            elif quantity == 0:
                bad["zero_quantity"] += 1
            elif price is None:
                bad["bad_price"] += 1
            elif price < 0:
                bad["negative_price"] += 1
            elif not ts_ok(ts):
                bad["bad_timestamp"] += 1
            elif cancel and quantity > 0:
                bad["cancellation_with_positive_quantity"] += 1
            elif not cancel and quantity < 0:
                bad["stock_adjustment"] += 1
            else:
                customer = customer_id(customer_text)
                entry = invoices.get(invoice)
                if entry is None:
                    entry = invoices[invoice] = _Invoice(ts, customer)
                else:
                    if ts != entry.ts:
                        notes["invoice_rows_with_different_times"] += 1
                        entry.ts = min(entry.ts, ts)
                    if customer != entry.customer:
                        notes["invoice_rows_with_different_customers"] += 1
                        entry.customer = entry.customer or customer
                entry.lines.append({"item_id": code, "quantity": abs(int(quantity)),
                                    "price": price})  # fmt: skip
    return invoices


def import_online_retail(
    sources: Sequence[str], tally: Tally, limit: int | None = None
) -> Iterator[Event]:
    """Orders from OnlineRetail.csv files; order_id is the InvoiceNo (invoices may span files)."""
    for invoice, entry in _read(sources, tally, limit).items():
        user = entry.customer
        if user is None:
            tally.notes["guest_invoices"] += 1
            user = f"guest-{invoice}"
        status = "refunded" if invoice.startswith("C") else "placed"
        lines = entry.lines
        parts = [lines[i : i + MAX_ORDER_ITEMS] for i in range(0, len(lines), MAX_ORDER_ITEMS)]
        if len(parts) > 1:
            tally.notes["invoices_split_over_500_lines"] += 1
        for k, part in enumerate(parts, 1):
            yield {
                "topic": "orders",
                "order_id": invoice if len(parts) == 1 else f"{invoice}-{k}of{len(parts)}",
                "ts": entry.ts, "user_id": user, "items": part,
                "total": round(sum(i["price"] * i["quantity"] for i in part), 2),
                "currency": CURRENCY, "status": status,
            }  # fmt: skip
