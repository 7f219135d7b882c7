"""Importers of real public datasets: run on the shared samples, checked against the source.

The samples live in ../shared/data (relative to the project root) and are never copied
into the repository; each test skips, naming the folder, when its sample is absent.
"""

from __future__ import annotations

import argparse
import csv
import gzip
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from backtest.importers import ID_FIELD, ImportFailed, ImportStats, add_import_parser, run_import
from backtest.jsonl import iter_lines, read_events, write_events
from online_models.decode import decode_dict

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TAOBAO = "taobao_userbehavior_sample/UserBehavior.csv"
YOOCHOOSE = "yoochoose_rsc15_100k/yoochoose-clicks-100k_train_full.txt"
RETAIL = "uci_online_retail_sample/OnlineRetail.csv"
SOURCES = {
    "taobao": [TAOBAO],
    "yoochoose": [YOOCHOOSE],
    "open-bandit": ["open_bandit_random/all", "open_bandit_random/men", "open_bandit_random/women"],
    "olist": ["olist_orders_sample"],
    "online-retail": [RETAIL],
}


def need(relative: str) -> Path:
    """The sample path, or skip naming the missing data folder."""
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"real-data sample {path} is absent (no shared/data folder on this machine)")
    return path


class Imported:
    def __init__(self, stats: ImportStats, path: Path) -> None:
        self.stats = stats
        self.path = path
        self.events = list(read_events(path))

    def topic(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["topic"] == name]


_CACHE: dict[str, Imported] = {}


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("imports")


def imported(fmt: str, out_dir: Path) -> Imported:
    """Import a real sample once per test module (gzip output, exercising the gz path)."""
    if fmt not in _CACHE:
        sources = [str(need(s)) for s in SOURCES[fmt]]
        path = out_dir / f"{fmt}.jsonl.gz"
        _CACHE[fmt] = Imported(run_import(fmt, sources, str(path)), path)
    return _CACHE[fmt]


@pytest.mark.parametrize("fmt", sorted(SOURCES))
def test_events_validate_sort_and_have_unique_ids(fmt: str, out_dir: Path) -> None:
    run = imported(fmt, out_dir)
    assert run.events, f"{fmt}: nothing imported"
    ids: Counter[tuple[str, str]] = Counter()
    for event in run.events:
        topic = event["topic"]
        decode_dict(topic, {k: v for k, v in event.items() if k != "topic"})
        assert isinstance(event["ts"], int)
        ids[(topic, event[ID_FIELD[topic]])] += 1
    assert max(ids.values()) == 1
    stamps = [e["ts"] for e in run.events]
    assert stamps == sorted(stamps)
    assert run.stats.events == len(run.events)
    assert run.stats.events_by_topic == dict(Counter(e["topic"] for e in run.events))


@pytest.mark.parametrize("fmt", sorted(SOURCES))
def test_second_run_gives_identical_bytes(fmt: str, out_dir: Path) -> None:
    first = imported(fmt, out_dir)
    again = out_dir / f"{fmt}.again.jsonl.gz"
    stats = run_import(fmt, [str(need(s)) for s in SOURCES[fmt]], str(again))
    assert again.read_bytes() == first.path.read_bytes()
    assert (stats.events_by_topic, stats.bad_rows) == (
        first.stats.events_by_topic, first.stats.bad_rows)  # fmt: skip


def test_taobao_counts_match_the_source(out_dir: Path) -> None:
    run = imported("taobao", out_dir)
    kinds = Counter(e["type"] for e in run.topic("clickstream"))
    assert kinds == {"view": 98_361, "add_to_cart": 6_063, "wishlist": 3_383}
    orders = run.topic("orders")
    assert len(orders) == 2_493
    assert run.stats.rows_read == 110_300 and run.stats.bad_rows == {}
    # Invented prices are per item: an item costs the same in every event.
    price: dict[str, float] = {}
    for e in run.topic("clickstream"):
        assert price.setdefault(e["item_id"], e["price"]) == e["price"]
    assert all(o["total"] == o["items"][0]["price"] and o["currency"] == "CNY" for o in orders)
    assert run.events[0]["ts"] == 1_511_658_000_000  # 2017-11-26 01:00:00 UTC


def test_yoochoose_sessions_are_the_users(out_dir: Path) -> None:
    run = imported("yoochoose", out_dir)
    assert run.stats.events_by_topic == {"clickstream": 70_278}
    assert all(e["type"] == "view" and e["user_id"] == e["session_id"] for e in run.events)
    assert len({e["session_id"] for e in run.events}) == 17_794
    first = min(run.events, key=lambda e: (e["session_id"] != "3", e["ts"]))
    assert (first["item_id"], first["ts"]) == ("214716935", 1_396_437_466_940)


def test_open_bandit_impressions_and_clicks(out_dir: Path) -> None:
    run = imported("open-bandit", out_dir)
    impressions = {e["impression_id"]: e for e in run.topic("ad-impressions")}
    clicks = run.topic("clickstream")
    source_clicks = 0
    for folder in SOURCES["open-bandit"]:
        name = Path(folder).name
        with open(need(folder) / f"{name}.csv", newline="") as handle:
            source_clicks += sum(row["click"] == "1" for row in csv.DictReader(handle))
    assert len(impressions) == 30_000
    assert len(clicks) == source_clicks == 130
    for click in clicks:
        shown = impressions[click["impression_id"]]
        assert click["type"] == "ad_click" and click["ts"] == shown["ts"] + 1000
        assert click["user_id"] == shown["user_id"] and click["item_id"] == shown["ad_id"]
    assert {e["campaign_id"] for e in impressions.values()} == {"all", "men", "women"}
    assert all(0 < e["cost"] <= e["bid"] for e in impressions.values())
    assert {e["placement"] for e in impressions.values()} == {"1", "2", "3"}
    first = impressions["obd-all-0"]
    assert first["ts"] == 1_574_553_634_762  # 2019-11-24 00:00:34.762830+00:00
    assert first["ad_id"] == "all:14" and first["context"]["position"] == 3


def test_olist_orders_carry_the_source_item_prices(out_dir: Path) -> None:
    run = imported("olist", out_dir)
    folder = need("olist_orders_sample")
    expected: Counter[str] = Counter()
    with open(folder / "olist_order_items_dataset.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            expected[row["order_id"]] += round(float(row["price"]) * 100)
    orders = run.topic("orders")
    assert len(orders) == 175  # the published subset joins items to only 175 orders
    assert run.stats.bad_rows == {"item_without_order": 4_954, "order_without_items": 3_896}
    for order in orders:
        assert round(order["total"] * 100) == expected[order["order_id"]]
        assert order["currency"] == "BRL"
    by_id = {o["order_id"]: o for o in orders}
    # Purchased 2017-01-05 16:05:07 in Sao Paulo, on summer time (UTC-2) that day.
    brt_summer = timezone(timedelta(hours=-2))
    assert by_id["09f58c00f941827ab206de7796785e44"]["ts"] == int(
        datetime(2017, 1, 5, 16, 5, 7, tzinfo=brt_summer).timestamp() * 1000)  # fmt: skip


def _write_olist(folder: Path) -> None:
    folder.mkdir()
    tables = {
        "olist_orders_dataset.csv": "order_id,customer_id,order_status,order_purchase_timestamp\n"
        "o1,c1,delivered,2018-06-01 10:00:00\no2,c2,canceled,2018-06-02 10:00:00\n"
        "o3,c1,unavailable,2018-06-03 10:00:00\no4,c3,lost,2018-06-04 10:00:00\n"
        "o5,c3,shipped,not a date\n",
        "olist_order_items_dataset.csv": "order_id,order_item_id,product_id,price\n"
        "o1,1,p1,10.00\no1,2,p1,10.00\no1,3,p2,5.50\no2,1,p2,5.50\no3,1,p3,1\n"
        "o4,1,p1,1\no5,1,p1,1\no9,1,p1,1\no1,4,p2,-1\n",
        "olist_products_dataset.csv": "product_id,product_category_name\n"
        "p1,beleza_saude\np2,sem_traducao\np3,\n",
        "olist_customers_dataset.csv": "customer_id,customer_unique_id\nc1,u1\n",
        "product_category_name_translation.csv": "\ufeffproduct_category_name,"
        "product_category_name_english\nbeleza_saude,health_beauty\n",
    }
    for name, text in tables.items():
        (folder / name).write_text(text, encoding="utf-8")


def test_olist_mapping_on_a_small_joined_folder(tmp_path: Path) -> None:
    _write_olist(tmp_path / "olist")
    stats = run_import("olist", [str(tmp_path / "olist")], str(tmp_path / "o.jsonl"))
    orders = {e["order_id"]: e for e in read_events(tmp_path / "o.jsonl")}
    assert sorted(orders) == ["o1", "o2", "o3"]
    assert [orders[o]["status"] for o in ("o1", "o2", "o3")] == ["placed", "cancelled", "cancelled"]
    assert orders["o1"]["items"] == [
        {"item_id": "p1", "quantity": 2, "price": 10.0, "category": "health_beauty"},
        {"item_id": "p2", "quantity": 1, "price": 5.5, "category": "sem_traducao"},
    ]
    assert orders["o1"]["total"] == 25.5 and orders["o1"]["user_id"] == "u1"
    assert orders["o2"]["user_id"] == "c2"  # no customers row: falls back to customer_id
    assert "category" not in orders["o3"]["items"][0]
    assert stats.bad_rows == {"bad_timestamp": 1, "item_bad_price": 1,
                              "item_without_order": 1, "unknown_status": 1}  # fmt: skip
    assert stats.notes["category_untranslated"] == 1


def test_online_retail_invoices_refunds_and_guests(out_dir: Path) -> None:
    run = imported("online-retail", out_dir)
    orders = run.topic("orders")
    refunds = [o for o in orders if o["status"] == "refunded"]
    assert {o["order_id"][0] for o in refunds} == {"C"} and len(refunds) == 43
    assert all(o["status"] == "placed" for o in orders if not o["order_id"].startswith("C"))
    assert all(i["quantity"] > 0 for o in orders for i in o["items"])
    assert run.stats.bad_rows == {"stock_adjustment": 30}
    assert run.stats.rows_read == 10_000
    assert sum(len(o["items"]) for o in orders) == 10_000 - 30
    # A refund's total is the money given back: the source's negative line values, flipped.
    source: Counter[str] = Counter()
    with open(need(RETAIL), newline="") as handle:
        for row in csv.DictReader(handle):
            if row["InvoiceNo"].startswith("C"):
                value = float(row["Quantity"]) * float(row["UnitPrice"])
                source[row["InvoiceNo"]] -= round(value * 100)
    assert {o["order_id"]: round(o["total"] * 100) for o in refunds} == dict(source)
    parts = sorted(o["order_id"] for o in orders if o["order_id"].startswith("536876"))
    assert parts == ["536876-1of2", "536876-2of2"]
    guests = [o for o in orders if o["user_id"].startswith("guest-")]
    assert guests and all(o["user_id"].removeprefix("guest-") in o["order_id"] for o in guests)
    assert next(o for o in orders if o["order_id"] == "536365")["user_id"] == "17850"


def test_bad_rows_are_counted_by_reason(tmp_path: Path) -> None:
    src = tmp_path / "UserBehavior.csv"
    src.write_text(
        "user_id,item_id,category_id,behavior,timestamp\n"  # a header: noted, not bad
        "1,10,5,pv,1511658000\n"
        "1,10,5,pv\n"  # missing a column
        "1,10,5,look,1511658000\n"  # unknown behaviour
        "1,10,5,pv,yesterday\n"  # unparseable time
        "1,10,5,pv,86400\n"  # 1970: outside the plausible range
        ",10,5,pv,1511658000\n"  # no user
        "1,11,5,buy,1511658001\n"
    )
    stats = run_import("taobao", [str(src)], str(tmp_path / "out.jsonl"))
    assert stats.rows_read == 8
    assert stats.bad_rows == {"bad_timestamp": 2, "empty_id": 1, "unknown_behavior": 1,
                              "wrong_column_count": 1}  # fmt: skip
    assert stats.notes == {"header_skipped": 1}
    assert stats.events_by_topic == {"clickstream": 1, "orders": 1}
    assert "wrong_column_count" in stats.summary()


def test_online_retail_bad_rows(tmp_path: Path) -> None:
    src = tmp_path / "retail.csv"
    src.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "1,A,x,2,2010-12-01 08:00:00,1.5,17850.0,UK\n"
        "1,B,x,0,2010-12-01 08:00:00,1.5,17850.0,UK\n"
        "2,A,x,1,2010-12-01 08:00:00,-3,,UK\n"
        "C3,A,x,4,2010-12-01 08:00:00,1,,UK\n"
        "4,A,x,1,someday,1,,UK\n"
        "A5,A,x,1,2010-12-01 08:00:00,1,,UK\n"
        "6,A,x,1.5,2010-12-01 08:00:00,1,,UK\n"
        "C7,A,x,-4,2011-07-01 12:00:00,2,,UK\n"
    )
    stats = run_import("online-retail", [str(src)], str(tmp_path / "r.jsonl"))
    assert stats.bad_rows == {
        "bad_quantity": 1, "bad_timestamp": 1, "cancellation_with_positive_quantity": 1,
        "negative_price": 1, "unknown_invoice_kind": 1, "zero_quantity": 1,
    }  # fmt: skip
    events = list(read_events(tmp_path / "r.jsonl"))
    assert [(e["order_id"], e["status"], e["user_id"]) for e in events] == [
        ("1", "placed", "17850"), ("C7", "refunded", "guest-C7")]  # fmt: skip
    # July is British Summer Time: 12:00 local is 11:00 UTC.
    assert events[1]["ts"] == int(datetime(2011, 7, 1, 11, tzinfo=UTC).timestamp() * 1000)
    assert events[1]["items"] == [{"item_id": "A", "quantity": 4, "price": 2.0}]


def test_unusable_source_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("Session\tItem\n1\t2\n")
    with pytest.raises(ImportFailed, match="missing column"):
        run_import("yoochoose", [str(tmp_path / "c.txt")], str(tmp_path / "x.jsonl"))
    with pytest.raises(ImportFailed, match="item_context"):
        (tmp_path / "camp").mkdir()
        (tmp_path / "camp" / "camp.csv").write_text("a\n")
        run_import("open-bandit", [str(tmp_path / "camp")], str(tmp_path / "x.jsonl"))
    assert not (tmp_path / "x.jsonl").exists()


def test_gzip_round_trip_is_reproducible(tmp_path: Path) -> None:
    events = [{"topic": "clickstream", "event_id": str(i), "ts": i, "note": "é"} for i in range(5)]
    assert write_events(tmp_path / "a.jsonl.gz", events) == 5
    assert write_events(tmp_path / "b.jsonl.gz", events) == 5
    assert write_events(tmp_path / "a.jsonl", events) == 5
    assert list(read_events(tmp_path / "a.jsonl.gz")) == events
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    assert gzip.decompress((tmp_path / "a.jsonl.gz").read_bytes()) == (
        tmp_path / "a.jsonl").read_bytes()  # fmt: skip
    assert list(iter_lines(tmp_path / "a.jsonl")) == list(iter_lines(tmp_path / "a.jsonl.gz"))
    both = list(read_events([tmp_path / "a.jsonl", tmp_path / "b.jsonl.gz"]))
    assert both == events + events


def test_cli_import_with_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = need(TAOBAO)
    parser = argparse.ArgumentParser(prog="ecom-stream")
    add_import_parser(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "out" / "taobao.jsonl.gz"
    args = parser.parse_args(["import", "taobao", str(source), "-o", str(out), "--limit", "1000"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "1,000 rows read" in printed and "bad rows: none" in printed
    assert sum(1 for _ in iter_lines(out)) == 1000
    with pytest.raises(SystemExit):
        parser.parse_args(["import", "taobao", str(source), "-o", str(out), "--limit", "0"])
