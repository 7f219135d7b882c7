"""Open Bandit Dataset logs (ZOZOTOWN): a campaign folder with `<log>.csv` + item_context.csv.

Each logged recommendation becomes an `ad-impressions` event; a logged click also
becomes a clickstream `ad_click` one second later, pointing at the impression.

* campaign_id is the folder name (all/men/women). Item ids restart at 0 in every
  campaign, so ads and items are named `<campaign>:<item_id>` to stay distinct.
* user_id hashes the four user features. They are coarse (about 240 distinct
  combinations per campaign), so a "user" is a segment, not a person.
* category is the first 12 hex digits of the hashed `item_feature_1`.
* bid/cost are INVENTED (the data has no prices), see `ad_bid` and `clearing_cost`.

>>> ad_bid("all", "14", 1) == ad_bid("all", "14", 1) > ad_bid("all", "14", 3)
True
>>> 0 < clearing_cost("obd-all-0", 0.002) < 0.002
True
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from datetime import UTC
from functools import cache
from itertools import islice
from pathlib import Path

from backtest.importers.common import (
    Event,
    ImportFailed,
    LocalTime,
    Tally,
    header_index,
    lognormal_price,
    open_text,
    parse_float,
    stable_id,
    stable_unit,
    ts_ok,
)

CLICK_DELAY_MS = 1000
# The widget shows three slots; lower slots are worth less, as in most position auctions.
POSITION_FACTOR = {1: 1.0, 2: 0.8, 3: 0.6}
BASE_BID = 0.002  # currency units per impression, i.e. a 2.00 CPM median
LOG_COLUMNS = ("", "timestamp", "item_id", "position", "click", "propensity_score")
USER_COLUMNS = tuple(f"user_feature_{i}" for i in range(4))
ITEM_COLUMNS = ("item_id", "item_feature_0", "item_feature_1", "item_feature_2", "item_feature_3")


@cache  # a handful of ads, thousands of impressions each
def ad_bid(campaign: str, item: str, position: int) -> float:
    """Invented bid per impression: a fixed lognormal per ad times the slot factor."""
    base = lognormal_price("obd-bid", f"{campaign}:{item}", median=BASE_BID, sigma=0.5,
                           low=0.0001, high=0.05, digits=6)  # fmt: skip
    return round(base * POSITION_FACTOR[position], 6)


def clearing_cost(impression_id: str, bid: float) -> float:
    """Invented second-price clearing cost: 40-100 % of the bid, fixed per impression."""
    return round(bid * (0.4 + 0.6 * stable_unit("obd-cost", impression_id)), 6)


def _locate(source: str) -> tuple[str, Path, Path]:
    """(campaign, log csv, item_context csv) for a campaign folder or its log file."""
    path = Path(source)
    folder = path if path.is_dir() else path.parent
    context = folder / "item_context.csv"
    if path.is_dir():
        logs = sorted(p for p in folder.glob("*.csv") if p.name != context.name)
        named = folder / f"{folder.name}.csv"
        if named in logs:
            logs = [named]
        if len(logs) != 1:
            raise ImportFailed(f"{source}: expected one log CSV besides item_context.csv")
        path = logs[0]
    if not context.is_file():
        raise ImportFailed(f"{source}: {context} is missing")
    return folder.name, path, context


def _items(path: Path) -> dict[str, tuple[str | None, Event]]:
    """item_id -> (category, item attributes for the impression context)."""
    with open_text(path) as handle:
        reader = csv.reader(handle)
        cols = header_index(next(reader, []), ITEM_COLUMNS, str(path))
        items: dict[str, tuple[str | None, Event]] = {}
        for row in reader:
            item, f0, f1, f2, f3 = (row[i] for i in cols)
            items[item] = (f1[:12] or None, {
                "item_feature_0": parse_float(f0), "item_feature_1": f1,
                "item_feature_2": f2, "item_feature_3": f3,
            })  # fmt: skip
    return items


def import_open_bandit(
    sources: Sequence[str], tally: Tally, limit: int | None = None
) -> Iterator[Event]:
    """Impressions (+ ad clicks) from campaign folders; ids are `obd-<campaign>-<idx>`."""
    parse_ts = LocalTime(UTC)  # the log's timestamps carry +00:00; naive ones are UTC too
    bad, notes = tally.bad, tally.notes
    for source in sources:
        campaign, log_path, context_path = _locate(source)
        items = _items(context_path)
        # Few distinct users and items: their ids and context parts are built once.
        users: dict[tuple[str, ...], tuple[str, Event]] = {}
        with open_text(log_path) as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            i_idx, i_ts, i_item, i_pos, i_click, i_prop = header_index(
                header, LOG_COLUMNS, str(log_path)
            )
            i_users = header_index(header, USER_COLUMNS, str(log_path))
            affinity = {h[len("user-item_affinity_") :]: i for i, h in enumerate(header)
                        if h.startswith("user-item_affinity_")}  # fmt: skip
            for row in islice(reader, tally.budget(limit)):
                tally.rows_read += 1
                if len(row) != len(header):
                    bad["wrong_column_count"] += 1
                    continue
                try:
                    ts = parse_ts(row[i_ts])
                except ValueError:
                    ts = -1
                if not ts_ok(ts):
                    bad["bad_timestamp"] += 1
                    continue
                idx, item, click = row[i_idx], row[i_item], row[i_click]
                position = int(row[i_pos]) if row[i_pos].isdigit() else 0
                if not idx or not item:
                    bad["empty_id"] += 1
                    continue
                if position not in POSITION_FACTOR:
                    bad["bad_position"] += 1
                    continue
                if click not in ("0", "1"):
                    bad["bad_click"] += 1
                    continue
                key = tuple(row[i] for i in i_users)
                known = users.get(key)
                if known is None:
                    features = {f"user_feature_{i}": v for i, v in enumerate(key)}
                    known = users[key] = (stable_id("obd-u-", *key), features)
                user, user_context = known
                category, item_context = items.get(item, (None, {}))
                if item not in items:
                    notes["item_without_context"] += 1
                impression_id = f"obd-{campaign}-{idx}"
                ad_id = f"{campaign}:{item}"
                bid = ad_bid(campaign, item, position)
                context: Event = {
                    "position": position, "propensity": parse_float(row[i_prop]),
                    "affinity": parse_float(row[affinity[item]]) if item in affinity else None,
                    "source_item_id": item,
                    **user_context, **item_context,
                }  # fmt: skip
                yield {
                    "topic": "ad-impressions", "impression_id": impression_id, "ts": ts,
                    "user_id": user, "campaign_id": campaign, "ad_id": ad_id,
                    "placement": str(position), "bid": bid,
                    "cost": clearing_cost(impression_id, bid), "context": context,
                }  # fmt: skip
                if click == "1":
                    ad_click: Event = {
                        "topic": "clickstream", "event_id": f"{impression_id}-click",
                        "ts": ts + CLICK_DELAY_MS, "user_id": user, "type": "ad_click",
                        "item_id": ad_id, "impression_id": impression_id,
                    }  # fmt: skip
                    if category:
                        ad_click["category"] = category
                    yield ad_click
