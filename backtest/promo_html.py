"""The promotions section of report.html: the Qini figures and curve (issue 22)."""

from __future__ import annotations

from typing import Any

from backtest.html_charts import Chart, _label
from backtest.html_format import note, number, table

CAPTION = (
    "Qini curve on the judged exposures: incremental purchases (treated purchases minus "
    "the controls' scaled to the treated count) among the users ranked highest by each "
    "score. Higher is better; the dotted line is random targeting. Oracle: the true uplift "
    "of each exposure; response model: purchase intent, ignoring the offer."
)
NAMES = {
    "learned": "learned uplift",
    "oracle": "oracle (true uplift)",
    "response": "response model",
}


def qini_chart(p: dict[str, Any]) -> Chart:
    curves = (p.get("qini") or {}).get("curve") or {}

    def draw(fig: Any, rep: dict[str, Any]) -> None:
        ax = fig.add_subplot(1, 1, 1)
        last = (0.0, 0.0)
        for name, points in curves.items():
            ax.plot([k for k, _ in points], [q for _, q in points], label=NAMES.get(name, name))
            last = (points[-1][0], points[-1][1])
        ax.plot([0, last[0]], [0, last[1]], color="grey", linestyle=":", label="random")
        _label(ax, "users targeted (ranked by score, highest first)", "incremental purchases")

    if not curves:
        return Chart("Qini curve", reason=p.get("reason", "No judged outcomes."))
    return Chart("Qini curve", CAPTION, draw)


def promotions_html(report: dict[str, Any]) -> str:
    p = report.get("promotions")
    if not p:
        return ""
    q = p.get("qini") or {}
    rows = [
        ("exposures / judged outcomes", f"{p['exposures']:,} / {p['outcomes']['judged']:,}"),
        ("chosen learner", str(p.get("model"))),
        ("Qini coefficient: learned", number(q.get("learned"))),
        ("Qini coefficient: oracle", number(q.get("oracle"))),
        ("Qini coefficient: response model", number(q.get("response_model"))),
        ("qini.captured (learned / oracle; goal >= 0.80)", number(q.get("captured"))),
        (
            f"vs_response_model (incremental purchases at {p['budget_share']:.0%}; goal >= 1.5)",
            number(p.get("vs_response_model")),
        ),
    ]
    intent = p.get("purchase_intent") or {}
    rows += [
        ("purchase intent AUC", number(intent.get("auc"))),
        (
            "purchase intent log-loss / base rate's",
            f"{number(intent.get('log_loss'))} / {number(intent.get('base_rate_log_loss'))}",
        ),
    ]
    out = "<h2>Promotions</h2>" + note(p["protocol"]) + table(rows)
    return out + qini_chart(p).html(report)
