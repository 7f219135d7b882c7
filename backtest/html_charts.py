"""The charts of report.html: each is full width (1400 px), has labelled axes and a
caption saying what it shows and which way is better, or, when the run has nothing to
draw, the one sentence saying why (an empty chart tells an analyst nothing).

>>> r = {"models": {"by_time": [], "click": {"calibration_curve": [], "positives": 0},
...      "conversion": {"calibration_curve": [], "positives": 0}}}
>>> progressive(r).reason
'No labels were scored in this input (no ad impressions), so there is nothing to track over time.'
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backtest.html_format import WHO, esc, note

Draw = Callable[[Any, dict[str, Any]], None]  # (figure, report)
WIDTH_IN, HEIGHT_IN, DPI = 14.0, 4.6, 100  # 1400 x 460 px: the page's full width
MODELS = ("click", "conversion")
# What each chart shows and which way is better (the line under it).
CAPTIONS = {
    "progressive": "Left: log-loss of each model's predictions on the labels of each hour, "
    "against the running base rate on the same labels; the model helps where its line is "
    "below the dotted one.",
    "progressive_auc": " Right: AUC per hour (how well the model ranks; 0.5 is random, "
    "higher is better).",
    "outcomes": "Each bar: what the adjusted bids got divided by what the constant bid got "
    "for the same spend. Above 1 (green) the adjusted bids did better, below 1 (red) worse; "
    "spend (grey) should be at 1.",
    "calibration": "Each point is a bin of predictions: its observed rate against the "
    "predicted one. Closer to the dotted diagonal is better; above it the model "
    "under-predicts.",
    "hit_rate": "Share of judged positions whose next item was in the user's list, per time "
    "bucket, for the recommender and the popularity baseline. Higher is better.",
}


@dataclass
class Chart:
    title: str
    caption: str = ""
    draw: Draw | None = None
    reason: str | None = None  # set when there is nothing to draw

    def html(self, report: dict[str, Any]) -> str:
        head = f"<h3>{esc(self.title)}</h3>"
        if self.draw is None:
            return head + note(self.reason or "Nothing to show.")
        return (
            f'{head}<figure><img alt="{esc(self.title)}" '
            f'src="data:image/png;base64,{png(self.draw, report)}">'
            f"<figcaption>{esc(self.caption)}</figcaption></figure>"
        )


def png(draw: Draw, report: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(WIDTH_IN, HEIGHT_IN))
    try:
        draw(fig, report)
        fig.tight_layout()
        buf = io.BytesIO()
        # No metadata: the same report gives the same bytes.
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _label(ax: Any, x: str, y: str, **legend: Any) -> None:
    """Both axes named (with units or direction) and the legend, on every chart."""
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(**{"fontsize": 9, **legend})


def _hours(points: list[dict[str, Any]], key: str = "start_ms") -> list[float]:
    t0 = points[0][key] if points else 0
    return [(p[key] - t0) / 3_600_000 for p in points]


def _scored(rows: list[dict[str, Any]], model: str) -> bool:
    return any((b.get(model) or {}).get("n") for b in rows)


def progressive(r: dict[str, Any]) -> Chart:
    rows = r["models"]["by_time"]
    models = [m for m in MODELS if _scored(rows, m)]
    title = "Model quality over time (progressive validation: predict, then learn)"
    if not models:
        return Chart(
            title,
            reason="No labels were scored in this input (no ad impressions), "
            "so there is nothing to track over time.",
        )
    with_auc = [m for m in models if any((b[m] or {}).get("auc") is not None for b in rows)]

    def draw(fig: Any, rep: dict[str, Any]) -> None:
        x = _hours(rows)
        ax = fig.add_subplot(1, 2 if with_auc else 1, 1)
        for m, style in zip(models, ("-", "--"), strict=False):
            ax.plot(x, [b[m].get("logloss") for b in rows], style, label=f"{m} model")
            ax.plot(x, [b[m].get("constant_logloss") for b in rows], ":", label=f"{m}: base rate")
        _label(ax, "hours since the first event", "log-loss per hour bucket (lower is better)")
        if with_auc:
            ax2 = fig.add_subplot(1, 2, 2)
            for m in with_auc:
                ax2.plot(x, [b[m].get("auc") for b in rows], "o-", ms=3, label=f"{m} model")
            ax2.axhline(0.5, color="grey", linestyle=":", label="random (0.5)")
            _label(ax2, "hours since the first event", "AUC per hour bucket (higher is better)")

    caption = CAPTIONS["progressive"] + (CAPTIONS["progressive_auc"] if with_auc else "")
    return Chart(title, caption, draw)


def calibration(r: dict[str, Any]) -> Chart:
    title = "Calibration: predicted vs observed rate"
    usable = [
        m
        for m in MODELS
        if r["models"][m].get("positives")
        and sum(1 for c in r["models"][m]["calibration_curve"] if c.get("n")) >= 2
    ]
    if not usable:
        return Chart(
            title,
            reason="No model had both outcomes spread over two or more prediction bins "
            "(too few or no positive labels), so there is no calibration curve to draw.",
        )

    def draw(fig: Any, rep: dict[str, Any]) -> None:
        ax = fig.add_subplot(1, 1, 1)
        top = 0.0
        for m in usable:
            curve = [c for c in rep["models"][m]["calibration_curve"] if c.get("n")]
            xs, ys = [c["bin"] for c in curve], [c["observed"] for c in curve]
            ax.plot(xs, ys, "o-", label=f"{m} model")
            top = max(top, *xs, *ys)
        top = min(1.0, top * 1.1 + 0.01)
        ax.plot([0, top], [0, top], ":", color="grey", label="perfect calibration")
        _label(ax, "predicted probability (bin centre)", "observed rate in the bin")

    return Chart(title, CAPTIONS["calibration"], draw)


def hit_rate(r: dict[str, Any]) -> Chart:
    recs = r["recommendations"]
    rows = recs["by_time"]
    title = "Next-item hit rate over time"
    if not rows or not recs.get("evaluated"):
        return Chart(
            title, reason="No position was judged (no user came back with a next item event)."
        )
    if not any(b[w][f"hit@{k}"] for b in rows for w in ("model", "baseline") for k in (10, 20)):
        return Chart(
            title,
            reason=f"Neither the recommender nor popularity hit any of the "
            f"{recs['evaluated']:,} judged positions, so the curve would be flat at 0.",
        )

    def draw(fig: Any, rep: dict[str, Any]) -> None:
        ax = fig.add_subplot(1, 1, 1)
        x = _hours(rows)
        for who, name in (("model", "recommender"), ("baseline", "popularity")):
            for k, style in ((10, "-"), (20, "--")):
                ax.plot(x, [b[who][f"hit@{k}"] for b in rows], style, label=f"{name}, top {k}")
        _label(ax, "hours since the first event", "share of next items in the list")

    return Chart(title, CAPTIONS["hit_rate"], draw)


def pacing(r: dict[str, Any]) -> Chart:
    bidding = r["bidding"]
    who = "closed_loop" if bidding.get("closed_loop") else "policy"

    def draw(fig: Any, rep: dict[str, Any]) -> None:
        # Curves are (day + elapsed share of the day, day + spent share of its budget).
        ax = fig.add_subplot(1, 1, 1)
        end = 0.0
        for style, name in (("-", who), ("--", "baseline")):
            for c, v in bidding[name]["campaigns"].items():
                xs = [p[0] - int(v["curve"][0][0]) for p in v["curve"]]
                ys = [p[1] - int(p[0]) for p in v["curve"]]
                end = max(end, *xs)
                ax.plot(xs, ys, style, label=f"{WHO[name]}: {c}", linewidth=1)
        days = max(math.ceil(end - 1e-9), 1)  # the days the curves cover
        ax.plot(
            [d + f for d in range(days) for f in (0.0, 1.0)],
            [f for _ in range(days) for f in (0.0, 1.0)],
            ":",
            color="grey",
            label="even spend",
        )
        _label(
            ax,
            "days since start (each day's curve restarts at UTC midnight)",
            "share of the day's budget spent",
            fontsize=8,
            ncol=3,
        )

    return Chart(
        "Spend against the even-spend line",
        "Share of each day's budget spent as the day goes by, per campaign. Closer to the "
        "dotted even-spend line is better, and each day should end at 1 (budget spent).",
        draw,
    )


OUTCOMES = ("won", "clicks", "conversions", "revenue", "spend")


def outcomes(r: dict[str, Any]) -> Chart:
    policy, baseline = r["bidding"]["policy"], r["bidding"]["baseline"]
    names = [n for n in OUTCOMES if baseline.get(n)]
    missing = [n for n in OUTCOMES if not baseline.get(n) and not policy.get(n)]
    title = "Adjusted bids against the constant bid (equal spend)"

    def draw(fig: Any, rep: dict[str, Any]) -> None:
        ax = fig.add_subplot(1, 1, 1)
        ratios = [policy[n] / baseline[n] for n in names]
        colours = [
            "tab:grey" if n == "spend" else "tab:green" if v >= 1 else "tab:red"
            for n, v in zip(names, ratios, strict=True)
        ]
        bars = ax.bar(names, ratios, color=colours)
        ax.bar_label(bars, labels=[f"{v:.2f}x" for v in ratios])
        ax.axhline(1.0, color="grey", linestyle=":", label="constant bid = 1")
        _label(ax, "outcome of the simulated auctions", "adjusted bids / constant bid")

    caption = CAPTIONS["outcomes"]
    if missing:
        caption += f" Not shown: {', '.join(missing)} (none in either run in this input)."
    return Chart(title, caption, draw)


def charts(r: dict[str, Any]) -> list[Chart]:
    out = [progressive(r), calibration(r), hit_rate(r)]
    if r["bidding"].get("policy"):
        out += [pacing(r), outcomes(r)]
    return out
