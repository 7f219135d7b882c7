"""report.html: one self-contained page (charts embedded as base64 PNG) from
report.json, for analysts: a summary of the headline figures against their baselines
in the same run, then each section in words with units, rounded numbers, and one
sentence in place of a section that has nothing to show.

>>> rows = summary_rows({"models": {"click": {"n": 10, "logloss": 0.2,
...     "constant_logloss": 0.25, "auc": 0.7}, "conversion": {"n": 0}},
...     "recommendations": {"evaluated": 0}, "bidding": {}})
>>> [r[3] for r in rows]
['better', 'better']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backtest.html_charts import charts
from backtest.html_format import (
    WHO,
    esc,
    label,
    note,
    number,
    percent,
    scalars,
    table,
    when,
)
from backtest.promo_html import promotions_html

GATES = {
    "too_few_positives": "kept out of bids: too few positive labels yet to trust it",
    "not_better_than_constant": "kept out of bids: its recent log-loss is no better than "
    "the base rate's",
    "miscalibrated": "kept out of bids: its recent predictions are off the observed rate",
}
EMPTY_MODEL = {
    "click": "No ad impressions in this input: no click model.",
    "conversion": "No ad clicks in this input: no conversion model.",
}
STYLE = (
    "body{font-family:sans-serif;max-width:1400px;margin:0 auto;padding:0 1em}"
    "th{text-align:left;padding-right:1.5em;font-weight:normal}"
    "td{text-align:right;padding-right:1.5em}tr:nth-child(even){background:#f4f4f4}"
    "img{width:100%;height:auto}figure{margin:0}figcaption{color:#333;margin:.3em 0 1em}"
    ".note{font-style:italic}.better{color:#176b1a;font-weight:bold}"
    ".worse{color:#a31515;font-weight:bold}"
)


def _verdict(value: float, base: float, higher_better: bool, tol: float = 0.005) -> str:
    """better / worse / about the same, relative to the baseline."""
    if base == 0:
        return "better" if (value > 0) == higher_better and value != 0 else "about the same"
    change = (value - base) / abs(base)
    if abs(change) <= tol:
        return "about the same"
    return "better" if (change > 0) == higher_better else "worse"


def summary_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, this run, baseline in the same run, better/worse) for each headline."""
    rows: list[tuple[str, str, str, str]] = []
    for m in ("click", "conversion"):
        s = r["models"][m]
        if s.get("n") and s.get("logloss") is not None and s.get("constant_logloss") is not None:
            rows.append(
                (
                    f"{m} model log-loss (lower is better)",
                    number(s["logloss"]),
                    f"{number(s['constant_logloss'])} (base rate)",
                    _verdict(s["logloss"], s["constant_logloss"], higher_better=False),
                )
            )
        if s.get("n") and s.get("auc") is not None:
            rows.append(
                (
                    f"{m} model AUC (higher is better)",
                    number(s["auc"]),
                    "0.5 (random)",
                    _verdict(s["auc"], 0.5, higher_better=True),
                )
            )
    recs = r["recommendations"]
    if recs.get("evaluated"):
        for k in (10, 20):
            key = f"hit@{k}"
            rows.append(
                (
                    f"next-item hit rate in the top {k} (higher is better)",
                    percent(recs["model"][key]),
                    f"{percent(recs['baseline'][key])} (popularity)",
                    _verdict(recs["model"][key], recs["baseline"][key], higher_better=True),
                )
            )
    bidding = r["bidding"]
    if bidding.get("policy"):
        policy, base = bidding["policy"], bidding["baseline"]
        for key in ("clicks", "conversions", "revenue"):
            if base.get(key) or policy.get(key):
                rows.append(
                    (
                        f"{label(key)} from bids at equal spend (higher is better)",
                        number(policy[key]),
                        f"{number(base[key])} (constant bid)",
                        _verdict(policy[key], base[key], higher_better=True),
                    )
                )
        who = "closed_loop" if bidding.get("closed_loop") else "policy"
        mine, theirs = bidding[who]["pacing"], base["pacing"]
        if mine.get("end_error_mean") is not None and theirs.get("end_error_mean") is not None:
            rows.append(
                (
                    "mean end-of-day miss of the budget (lower is better)",
                    percent(mine["end_error_mean"]),
                    f"{percent(theirs['end_error_mean'])} (constant bid)",
                    _verdict(mine["end_error_mean"], theirs["end_error_mean"], False, tol=0.05),
                )
            )
    return rows


def _summary(r: dict[str, Any]) -> str:
    rows = summary_rows(r)
    if not rows:
        return "<h2>Summary</h2>" + note(
            "This input has no labels, no judged next items and no bids: nothing to compare."
        )
    body = "".join(
        f"<tr><th>{esc(a)}</th><td>{esc(b)}</td><td>{esc(c)}</td>"
        f'<td class="{"better" if d == "better" else "worse" if d == "worse" else ""}">'
        f"{esc(d)}</td></tr>"
        for a, b, c, d in rows
    )
    return (
        "<h2>Summary</h2><p>Headline figures of this run against their baselines, measured "
        "on the same events.</p><table><tr><th>figure</th><th>this run</th><th>baseline</th>"
        f"<th>verdict</th></tr>{body}</table>"
    )


def _counts(r: dict[str, Any]) -> str:
    c = r["counts"]
    out = "<h2>Input and output</h2><h3>Events read, by topic</h3>"
    out += table((label(k), number(v)) for k, v in c["events_by_topic"].items())
    invalid = c.get("invalid_by_reason") or {}
    out += "<h3>Invalid input lines</h3>"
    if invalid:
        out += table((k.replace("_", " "), number(v)) for k, v in invalid.items())
    else:
        out += note("Every input line was a valid event.")
    late = {f: n for f, n in (c.get("out_of_order_by_file") or {}).items() if n}
    if late:
        out += "<h3>Lines out of time order, per file</h3>" + table(
            (Path(f).name, number(n)) for f, n in late.items()
        )
    out += "<h3>Outputs written, by topic</h3>"
    outputs = c.get("outputs_by_topic") or {}
    out += (
        table((label(k), number(v)) for k, v in outputs.items())
        if outputs
        else note("The engine wrote no outputs for this input.")
    )
    return out + table(
        [
            (label("labels"), number(c.get("labels"))),
            (label("active_users"), number(c.get("active_users"))),
        ]
    )


def _model(r: dict[str, Any], m: str) -> str:
    s = r["models"][m]
    out = f"<h3>{m.capitalize()} model</h3>"
    if not s.get("n"):
        return out + note(EMPTY_MODEL[m])
    rows = [
        ("labels scored", number(s["n"])),
        ("positive labels", number(s.get("positives"))),
        ("log-loss of the model (lower is better)", number(s.get("logloss"))),
        ("log-loss of the running base rate, same labels", number(s.get("constant_logloss"))),
    ]
    if s.get("auc") is not None:
        rows.append((label("auc"), number(s["auc"])))
    if s.get("calibration") is not None:
        rows.append((label("calibration"), number(s["calibration"])))
    gate = s.get("gated")
    rows.append(
        (
            "used in bids at the end",
            "yes" if gate is None else GATES.get(gate, f"no ({gate.replace('_', ' ')})"),
        )
    )
    out += table(rows)
    if not s.get("positives"):
        out += note(
            f"Not one of the {number(s['n'])} labels was positive: AUC and calibration need "
            "both outcomes."
        )
    recent = s.get("recent") or {}
    if recent.get("n"):
        out += "<h4>Recent window (what the health gate reads)</h4>" + table(
            [
                ("labels in the window (decayed)", number(recent["n"])),
                ("positive labels (decayed)", number(recent.get("positives"))),
                ("log-loss of the model", number(recent.get("logloss"))),
                ("log-loss of the base rate", number(recent.get("constant_logloss"))),
            ]
            + (
                [(label("calibration"), number(recent["calibration"]))]
                if recent.get("calibration") is not None
                else []
            )
        )
    return out


def _revenue(r: dict[str, Any]) -> str:
    rev = r["models"].get("revenue") or {}
    out = "<h3>Revenue model</h3>"
    if not rev.get("n"):
        return out + note("No attributed orders in this input: no revenue model.")
    return out + table(
        [
            ("orders scored", number(rev["n"])),
            ("mean absolute error (lower is better)", number(rev.get("mae"))),
            ("mean revenue per order", number(rev.get("mean_target"))),
        ]
    )


def _recommendations(r: dict[str, Any]) -> str:
    recs, settings, perf = r["recommendations"], r["settings"], r["performance"]
    since = settings.get("evaluate_from")
    out = (
        "<h2>Recommendations (next item)</h2><p>Every item event"
        f"{'' if since is None else f' from {when(since)}'} is a position, judged by the "
        "user's next item event against the list the user holds then "
        f"({esc(settings.get('lists_judged', 'emitted'))}); a position without a list is "
        "a miss. A position is <em>judged</em> once the user's next item event comes, and "
        "<em>not judged</em> when the user never came back before the end (left out).</p>"
    )
    out += table(
        (label(k), number(recs.get(k)))
        for k in ("positions", "evaluated", "unresolved", "positions_without_list")
    )
    if not recs.get("evaluated"):
        return out + note("No position was judged: no user came back with a next item event.")
    metrics = list(recs["model"])
    out += "<h3>Recommender against popularity</h3>" + table(
        [(label(k), number(recs["model"][k]), number(recs["baseline"][k])) for k in metrics],
        head=("", "recommender", "popularity (baseline)"),
    )
    targets = recs.get("targets")
    if targets and (targets["seen"].get("positions") or targets["new"].get("positions")):
        out += "<h3>Next items the user had touched before, against new ones</h3>" + table(
            [
                (label(k), number(targets["seen"].get(k)), number(targets["new"].get(k)))
                for k in targets["seen"]
            ],
            head=("", "touched before", "new to the user"),
        )
        share = targets.get("share_of_hits@20_on_new")
        if share is not None:
            out += table([(label("share_of_hits@20_on_new"), percent(share))])
    cost = perf.get("recommend_us")
    if cost and cost.get("n"):
        out += "<h3>Time to compute one recommendation (microseconds)</h3>" + table(
            scalars(cost, skip=("n",))
        )
    return out


def _bidding(r: dict[str, Any]) -> str:
    bidding = r["bidding"]
    out = "<h2>Bidding</h2>"
    if not bidding.get("policy"):
        return out + note("No ad impressions in this input: no bids to simulate.")
    market = bidding["market_price"]
    eq = bidding.get("equal_spend") or {}
    out += (
        f"<p>Market prices: {esc(market.get('auction', ''))}. Budgets: "
        f"{esc(str(bidding['budgets'].get('source', '')).replace('_', ' '))}. The constant "
        "bid is scaled so that it spends what the adjusted bids spend "
        f"(per {esc(eq.get('per', 'campaign-day'))}, within {percent(eq.get('tolerance'))}: "
        f"{'held' if eq.get('within') else 'not held'}).</p>"
    )
    out += table(scalars(market, skip=("auction", "name")))
    whos = [
        w
        for w in ("baseline", "policy", "policy_stream", "closed_loop", "oracle")
        if bidding.get(w)
    ]
    keys = ["won", "clicks", "conversions", "revenue", "spend", "roas"]
    out += "<h3>Outcomes</h3>" + table(
        [(label(k), *(number(bidding[w].get(k)) for w in whos)) for k in keys],
        head=("", *(WHO[w] for w in whos)),
    )
    pace_keys = ["campaign_days", "end_error_mean", "end_error_max", "curve_error_mean"]
    out += "<h3>Pacing (lower gaps are better)</h3>" + table(
        [
            (label(k), *(number(bidding[w].get("pacing", {}).get(k)) for w in whos))
            for k in pace_keys
        ],
        head=("", *(WHO[w] for w in whos)),
    )
    gain = bidding.get("gain_captured")
    if gain is not None:
        out += f"<p>Share of the oracle's gain captured: {percent(gain)}.</p>"
    return out


def write_html(path: Path, report: dict[str, Any]) -> None:
    window = report["window"]
    names = ", ".join(Path(p).name for p in report["inputs"])
    sections = [
        "<h1>Backtest report</h1>",
        f"<p>Inputs: {esc(names)}; events from {when(window.get('first_ts'))} to "
        f"{when(window.get('last_ts'))}.</p>",
        _summary(report),
        _counts(report),
        "<h2>Models</h2>",
        _model(report, "click"),
        _model(report, "conversion"),
        _revenue(report),
        _recommendations(report),
        _bidding(report),
        promotions_html(report),
        "<h2>Charts</h2>",
        *(c.html(report) for c in charts(report)),
        "<h2>Performance of this replay</h2>",
        table(scalars(report["performance"])),
    ]
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Backtest report</title>"
        f"<link rel='icon' href='data:,'><style>{STYLE}</style></head><body>"
        f"{''.join(sections)}</body></html>\n",
        encoding="utf-8",
    )
