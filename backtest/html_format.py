"""Words and numbers for report.html: report.json's keys in plain words with their
units, numbers rounded to what matters, epoch times as dates, and small tables.

report.json keeps its keys (code and tests read them); only the page translates.

>>> label("constant_logloss"), label("hit@20")
('log-loss of the base rate (lower is better)', 'hit rate in the top 20')
>>> number(0.02825667620980639), number(4987.381109066331), number(12345), number(None)
('0.0283', '4,987', '12,345', 'n/a')
>>> when(1396744992560)
'2014-04-06 00:43 UTC'
>>> "<table>" in table([("a", "1")])
True
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Iterable
from typing import Any

# report.json key -> what an analyst reads. Rates are shares (0..1) unless named %.
LABELS: dict[str, str] = {
    # counts
    "ad-impressions": "ad impressions",
    "clickstream": "clickstream events (views, carts, clicks)",
    "orders": "orders",
    "recommendations": "recommendations",
    "bid-adjustments": "bid adjustments",
    "dead-letter": "dead letters (inputs that could not be processed)",
    "labels": "labels learned (impressions and clicks whose outcome became known)",
    "active_users": "users held at the end",
    # models
    "n": "labels scored",
    "positives": "positive labels",
    "logloss": "log-loss (lower is better)",
    "constant_logloss": "log-loss of the base rate (lower is better)",
    "auc": "AUC (0.5 = random, higher is better)",
    "calibration": "calibration (predicted / observed rate; 1 is right)",
    "mae": "mean absolute error of revenue",
    "mean_target": "mean revenue per order",
    # recommendations
    "positions": "positions (item events judged by the next one)",
    "evaluated": "positions judged (the user's next item event came)",
    "unresolved": "positions not judged (the user never came back)",
    "positions_without_list": "positions where the user held no list (counted as misses)",
    "hit@10": "hit rate in the top 10",
    "hit@20": "hit rate in the top 20",
    "mrr@10": "mean reciprocal rank in the top 10",
    "mrr@20": "mean reciprocal rank in the top 20",
    "hits@20": "hits in the top 20",
    "hit@20_new": "hit rate in the top 20 on items new to the user",
    "share_of_hits@20_on_new": "share of top-20 hits on items new to the user",
    "median": "median",
    "p99": "99th percentile",
    "p10": "10th percentile",
    "p90": "90th percentile",
    # bidding
    "won": "impressions won",
    "clicks": "clicks",
    "conversions": "conversions",
    "revenue": "revenue",
    "spend": "spend",
    "roas": "return on ad spend (revenue / spend)",
    "expected_clicks": "expected clicks (from the known click model)",
    "expected_conversions": "expected conversions (from the known model)",
    "spend_vs_baseline": "spend / constant bid's spend",
    "campaign_days": "campaign-days",
    "curve_error_max": "largest gap to the even-spend line (share of budget)",
    "curve_error_mean": "mean gap to the even-spend line (share of budget)",
    "end_error_max": "largest end-of-day miss of the budget (share of budget)",
    "end_error_mean": "mean end-of-day miss of the budget (share of budget)",
    "unspendable_days": "days the market could not absorb the budget",
    "days": "days",
    "impressions": "impressions in the input",
    "clicked_impressions": "impressions with a click",
    "recorded_cost": "impressions priced at their recorded cost",
    "lognormal": "impressions priced by the log-normal model",
    "budget_fraction": "budget as a share of the log's spend",
    "price_mu": "log-normal price mu",
    "price_sigma": "log-normal price sigma",
    "seed": "random seed",
    "spend_tolerance": "equal-spend tolerance (share of spend)",
    # performance
    "events_per_second": "events per second",
    "peak_memory_mb": "peak memory (MB)",
    "seconds": "seconds",
}

WHO: dict[str, str] = {
    "baseline": "constant bid (baseline)",
    "policy": "adjusted bids",
    "policy_stream": "adjusted bids as streamed",
    "closed_loop": "adjusted bids, closed loop",
    "oracle": "oracle (knows the outcomes)",
}


def label(key: str) -> str:
    """The words for a report.json key; an unknown key is de-underscored."""
    known = LABELS.get(key)
    if known is not None:
        return known
    return key.replace("_", " ").replace("@", " at ")


def number(value: Any, digits: int = 3) -> str:
    """Integers with thousands separators; floats to `digits` significant figures
    (whole numbers from 100 up). None / NaN read n/a."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100 or (value == int(value) and abs(value) >= 1):
            return f"{value:,.0f}"
        exponent = math.floor(math.log10(abs(value)))
        decimals = max(digits - 1 - exponent, 0)
        return f"{value:.{decimals}f}"
    return str(value)


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def when(ts_ms: int | None) -> str:
    """An epoch-ms time as a UTC date and minute."""
    if ts_ms is None:
        return "n/a"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts_ms / 1000))


def esc(text: Any) -> str:
    return html.escape(str(text))


def table(rows: Iterable[tuple[str, ...]], head: tuple[str, ...] | None = None) -> str:
    """Rows of (label, formatted value); `head` names the columns."""
    top = "".join(f"<th>{esc(h)}</th>" for h in head) if head else ""
    body = "".join(
        "<tr><th>" + esc(r[0]) + "</th>" + "".join(f"<td>{esc(v)}</td>" for v in r[1:]) + "</tr>"
        for r in rows
    )
    return f"<table>{'<tr>' + top + '</tr>' if top else ''}{body}</table>"


def scalars(data: dict[str, Any], skip: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The plain (not nested, not None) entries of a dict as labelled rows."""
    left_out = set(skip)
    return [
        (label(k), number(v))
        for k, v in data.items()
        if k not in left_out and v is not None and not isinstance(v, dict | list)
    ]


def note(text: str) -> str:
    """The one sentence that replaces a section with nothing to show."""
    return f'<p class="note">{esc(text)}</p>'
