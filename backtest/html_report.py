"""report.html: one self-contained page (plots embedded as base64 PNG) from report.json.

>>> "<table>" in _table({"a": 1})
True
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

Plot = Callable[[Any, dict[str, Any]], None]


def _png(draw: Plot, report: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.4))
    try:
        draw(ax, report)
        fig.tight_layout()
        buf = io.BytesIO()
        # No metadata: the same report gives the same bytes.
        fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _hours(points: list[dict[str, Any]], key: str = "start_ms") -> list[float]:
    t0 = points[0][key] if points else 0
    return [(p[key] - t0) / 3_600_000 for p in points]


def _models_over_time(ax: Any, r: dict[str, Any]) -> None:
    rows = r["models"]["by_time"]
    x = _hours(rows)
    for model, style in (("click", "-"), ("conversion", "--")):
        ax.plot(x, [b[model]["auc"] for b in rows], style, label=f"{model} AUC")
        ax.plot(x, [b[model]["logloss"] for b in rows], style, label=f"{model} log-loss")
        ax.plot(
            x,
            [b[model].get("constant_logloss") for b in rows],
            ":",
            label=f"{model} log-loss of the running base rate",
        )
    ax.set_xlabel("hours since start (bucket start)")
    ax.set_title("Progressive validation per time bucket")
    ax.legend(fontsize=7)


def _calibration(ax: Any, r: dict[str, Any]) -> None:
    ax.plot([0, 1], [0, 1], ":", color="grey")
    for model in ("click", "conversion"):
        curve = r["models"][model]["calibration_curve"]
        ax.plot([c["bin"] for c in curve], [c["observed"] for c in curve], "o-", label=model)
    ax.set_xlabel("predicted (bin centre)")
    ax.set_ylabel("observed rate")
    ax.set_title("Calibration")
    ax.legend(fontsize=7)


def _hit_rate(ax: Any, r: dict[str, Any]) -> None:
    rows = r["recommendations"]["by_time"]
    x = _hours(rows)
    for who in ("model", "baseline"):
        for k in (10, 20):
            ax.plot(x, [b[who][f"hit@{k}"] for b in rows], label=f"{who} hit@{k}")
    ax.set_xlabel("hours since start")
    ax.set_title("Next-item hit rate")
    ax.legend(fontsize=7)


def _pacing(ax: Any, r: dict[str, Any]) -> None:
    # Curves are (day + elapsed share of the day, day + spent share of its budget).
    who = "closed_loop" if r["bidding"].get("closed_loop") else "policy"
    for style, name in (("-", who), ("--", "baseline")):
        for c, v in r["bidding"][name]["campaigns"].items():
            xs = [p[0] - int(v["curve"][0][0]) for p in v["curve"]]
            ys = [p[1] - int(p[0]) for p in v["curve"]]
            ax.plot(xs, ys, style, label=f"{name} {c}", linewidth=0.8)
    ax.set_xlabel("days since start (the curve restarts at each UTC midnight)")
    ax.set_ylabel("spent share of the day's budget")
    ax.set_title("Spend vs pacing")
    ax.legend(fontsize=6, ncol=2)


def _outcomes(ax: Any, r: dict[str, Any]) -> None:
    names = ("won", "clicks", "conversions", "revenue", "spend")
    policy, baseline = r["bidding"]["policy"], r["bidding"]["baseline"]
    ratios = [(policy[n] / baseline[n]) if baseline[n] else 0.0 for n in names]
    ax.bar(names, ratios)
    ax.axhline(1.0, color="grey", linestyle=":")
    ax.set_title("Adjusted bids / constant-bid baseline (equal spend)")


def _table(data: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in data.items()
        if not isinstance(v, dict | list)
    )
    return f"<table>{rows}</table>"


def _recommendations(recs: dict[str, Any], settings: dict[str, Any], perf: dict[str, Any]) -> str:
    """The next-item section: protocol, model vs popularity side by side, seen/new
    targets and the cost of one recommendation."""
    lists = settings.get("lists_judged", "emitted")
    since = settings.get("evaluate_from")
    protocol = (
        f"<p>Every item event{'' if since is None else f' from ts {since}'} is a position, "
        f"judged by the user's next item event against the list the user holds then "
        f"({html.escape(str(lists))}); a position without a list is a miss.</p>"
    )
    metrics = [m for m in recs["model"]]
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    rows = "".join(
        f"<tr><th>{who}</th>" + "".join(f"<td>{recs[key][m]}</td>" for m in metrics) + "</tr>"
        for who, key in (("recommender", "model"), ("popularity", "baseline"))
    )
    table = f"<table><tr><th></th>{head}</tr>{rows}</table>"
    out = f"<h3>recommendations (next item)</h3>{protocol}{table}{_table(recs)}"
    targets = recs.get("targets")
    if targets:
        out += "<h4>targets the user had touched before vs new</h4>" + _table(
            {
                **{f"seen {k}": v for k, v in targets["seen"].items()},
                **{f"new {k}": v for k, v in targets["new"].items()},
                **{k: v for k, v in targets.items() if not isinstance(v, dict)},
            }
        )
    cost = perf.get("recommend_us")
    if cost and cost.get("n"):
        out += "<h4>cost of one recommendation (us)</h4>" + _table(cost)
    return out


def write_html(path: Path, report: dict[str, Any]) -> None:
    sections: list[str] = [
        "<h1>Backtest report</h1>",
        f"<p>inputs: {html.escape(', '.join(report['inputs']))}</p>",
    ]
    counts = report["counts"]
    for name in ("events_by_topic", "invalid_by_reason", "outputs_by_topic"):
        sections.append(f"<h3>{name}</h3>{_table(counts[name])}")
    for model in ("click", "conversion"):
        m = report["models"][model]
        gate = m.get("gated")
        sections.append(
            f"<h3>{model} model</h3>{_table(m)}"
            f"<h4>recent window (gate: {html.escape(gate or 'open')})</h4>"
            f"{_table(m.get('recent') or {})}"
        )
    recs = report["recommendations"]
    sections.append(_recommendations(recs, report["settings"], report["performance"]))
    plots: list[tuple[str, Plot, bool]] = [
        ("models", _models_over_time, bool(report["models"]["by_time"])),
        ("calibration", _calibration, True),
        ("hit rate", _hit_rate, bool(recs["by_time"])),
    ]
    bidding = report["bidding"]
    if bidding.get("policy"):
        market = bidding["market_price"]
        sections.append(
            f"<h3>bidding: market-price model</h3>{_table(market)}"
            f"<p>budgets: {html.escape(bidding['budgets']['source'])}, equal spend "
            f"{html.escape(str(bidding['equal_spend']))}, gain captured "
            f"{html.escape(str(bidding.get('gain_captured')))}</p>"
        )
        for who in ("baseline", "policy", "policy_stream", "closed_loop", "oracle"):
            if bidding.get(who):
                sections.append(
                    f"<h3>bidding: {who}</h3>{_table(bidding[who])}"
                    f"<h4>pacing</h4>{_table(bidding[who]['pacing'])}"
                )
        plots += [("pacing", _pacing, True), ("outcomes", _outcomes, True)]
    for title, draw, wanted in plots:
        if wanted:
            sections.append(
                f'<h3>{title}</h3><img alt="{title}" '
                f'src="data:image/png;base64,{_png(draw, report)}">'
            )
    sections.append(f"<h3>performance</h3>{_table(report['performance'])}")
    style = "body{font-family:sans-serif;max-width:900px}th{text-align:left;padding-right:1em}"
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Backtest"
        f"</title><style>{style}</style></head><body>{''.join(sections)}"
        "</body></html>\n",
        encoding="utf-8",
    )
