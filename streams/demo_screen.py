"""The `make run` screen: one fixed layout redrawn in place (rich), with a legend.

Everything the demo shows comes in a `View` (plain values), so the layout is a pure
function of it and can be rendered to text in tests.

>>> v = View(rate_in=500.0, rate_out=420.0, target_rate=1000.0, rate=500.0)
>>> "the worker cannot keep up" in render_text(v)
True
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
IDLE_WARN_MS = HOUR_MS  # a campaign with budget left that has won nothing for this long

LEGEND = (
    "[b]even[/]: the spend by now if the budget were spent evenly over the day's hours "
    "(spend ÷ even = 100 % is on plan; the worker plans by the day's traffic, so a "
    "night ahead of it is normal).  [b]pacing xF[/]: the campaign's pacing factor, "
    "multiplied into every bid (x1.00 neutral, below 1 holds back, 0 = budget spent).  "
    "[b]won[/]: share of the synthetic ad requests whose bid x multiplier cleared the "
    "price (only those are shown to users and sent to the worker).\n"
    "[b]reasons[/] of a bid adjustment: [i]new[/] first bid for this user and campaign, "
    "[i]value_moved[/] the user's predicted value changed, [i]model_gated[/] the click "
    "model is not trusted yet (the bid follows pacing alone), [i]pacing[/] a campaign-wide "
    "pacing update, [i]budget_exhausted[/] today's budget is spent.\n"
    "[b]strategies[/] of a recommendation (what produced the top item): [i]repeat[/] an "
    "item of the user's session again, [i]sequential_rules[/] / [i]covisitation[/] items "
    "that followed / went with the user's recent items, [i]session_knn[/] similar "
    "sessions, [i]affinity[/] the user's favourite categories, [i]trending[/] popular now."
)


@dataclass
class CampaignLine:
    campaign_id: str
    spend: float
    budget: float
    even: float
    factor: float
    idle_ms: int


@dataclass
class View:
    """What one redraw shows."""

    clock_ms: int = 0  # demo (event) time
    day: int = 1  # demo day, from 1
    speed: float = 0.0  # demo seconds per real second
    rate_in: float = 0.0  # worker: events read per second
    rate_out: float = 0.0  # outputs per second
    rate: float = 0.0  # the producer's rate now
    target_rate: float = 0.0  # the rate asked for (--rate)
    lag: float | None = None
    lag_growing: bool = False
    recs: int = 0
    bids: int = 0
    dead_letters: int = 0
    injected: int = 0  # malformed records the demo sent on purpose
    auc: str = "n/a"
    logloss: str = "n/a"
    won: float = 0.0
    campaigns: list[CampaignLine] = field(default_factory=list)
    recommendation: dict[str, Any] | None = None
    bid: dict[str, Any] | None = None
    header: str = ""


def _p(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _throughput(v: View) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    clock = time.strftime("%H:%M UTC", time.gmtime(v.clock_ms / 1000))
    t.add_row("demo time", f"day {v.day}  {clock}  (runs {v.speed:,.0f}x real time)")
    t.add_row("worker in / out", f"{v.rate_in:,.0f} events/s  /  {v.rate_out:,.0f} outputs/s")
    rate = f"{v.rate:,.0f} events/s"
    if v.target_rate and v.rate < 0.95 * v.target_rate:
        rate += f" [yellow](asked {v.target_rate:,.0f}/s: lowered, the worker cannot keep up)[/]"
    t.add_row("demo stream rate", rate)
    lag = "n/a" if v.lag is None else f"{v.lag:,.0f} records behind"
    if v.lag_growing:
        lag += " [red]and growing: this machine cannot keep up[/]"
    t.add_row("worker lag", lag)
    t.add_row("outputs", f"recommendations {v.recs:,}   bid adjustments {v.bids:,}")
    own = max(v.dead_letters - v.injected, 0)
    dl = f"{v.dead_letters:,}  ({v.injected:,} injected on purpose by the demo"
    dl += f", [red]{own:,} others[/])" if own else ", no others)"
    t.add_row("dead letters", dl)
    t.add_row("click model", f"progressive AUC {v.auc}   log-loss {v.logloss}")
    return t


def _pacing(v: View) -> Table:
    t = Table(title=f"pacing per campaign (won {v.won:.0%} of ad requests)", title_justify="left")
    for name in ("campaign", "spent today", "budget", "even by now", "spend ÷ even", "pacing"):
        t.add_column(name, justify="right")
    t.add_column("status", justify="left")
    for c in v.campaigns:
        ratio = c.spend / c.even if c.even > 0 else 1.0
        if c.spend >= c.budget * 0.999:
            status = "budget spent for today"
        elif c.idle_ms >= IDLE_WARN_MS:
            status = f"[red]WARNING: nothing won for {c.idle_ms / HOUR_MS:.1f} h of demo time[/]"
        elif ratio > 1.3:
            status = "[yellow]ahead of the even line[/]"
        elif ratio < 0.7:
            status = "[yellow]behind the even line[/]"
        else:
            status = "on plan"
        t.add_row(
            c.campaign_id,
            f"{c.spend:,.0f}",
            f"{c.budget:,.0f}",
            f"{c.even:,.0f}",
            f"{ratio:.0%}",
            f"x{c.factor:.2f}",
            status,
        )
    return t


def _samples(v: View) -> Group:
    lines: list[Any] = []
    r = v.recommendation
    if r is not None:
        items = ", ".join(i["item_id"] for i in r["items"])
        lines.append(
            Text.from_markup(
                f"[b]latest recommendation[/]  user {r['user_id']}  strategy "
                f"[i]{r['strategy']}[/]  items: {items}"
            )
        )
    b = v.bid
    if b is not None:
        features = "; ".join(
            f"{f['model']}: {f['feature']} {f['contribution']:+.2f}"
            for f in b.get("top_features") or []
        )
        gated = ", ".join(b.get("gated") or []) or "none"
        lines.append(
            Text.from_markup(
                f"[b]latest bid adjustment[/]  user {b['user_id']}  campaign {b['campaign_id']}  "
                f"multiplier x{b['multiplier']:.2f} = value x pacing x{b['pacing_factor']:.2f}"
                f"  reason [i]{b['reason']}[/]\n    p_click {_p(b.get('p_click'))}  p_conversion "
                f"{_p(b.get('p_conversion'))}  expected revenue {_p(b.get('expected_revenue'), 2)}"
                f"  models kept out: {gated}\n    top 3 contributions (log-odds): "
                f"{features or 'none yet (models kept out)'}"
            )
        )
    return Group(*lines) if lines else Group(Text("waiting for the first outputs..."))


def layout(v: View) -> Group:
    return Group(
        Text.from_markup(v.header),
        Panel(_throughput(v), title="stream", title_align="left"),
        _pacing(v),
        Panel(_samples(v), title="samples (whole)", title_align="left"),
        Panel(Text.from_markup(LEGEND), title="legend", title_align="left"),
    )


def render_text(v: View, width: int = 140) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(layout(v))
    return console.export_text()
