"""What the engine learns on the known-model market (`backtest.truth`), judged against
the truth: click model AUC beside the true probabilities' AUC on the same labelled
impressions (progressive, and on the last day), and the conversion model's calibration
at click time with and without the delayed-feedback correction.

The engine runs exactly as in a replay (`Runner`, one shared knowledge); the check
only listens to the labels it resolves:

* a click label is scored, as progressive validation scores it, by the click model's
  prediction just before it is learned, beside the impression's true P(click);
* a conversion's final label (when its 24 h window closes) carries the conversion
  prediction made when the click happened, beside the true P(conversion | click).

>>> from backtest.truth import TruthParams, generate_truth
>>> s = generate_truth(TruthParams(n_users=60, days=1, seed=4))
>>> check = run_truth(s)
>>> check.click_model.n == check.click_truth.n > 0
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from backtest.truth import DAY_MS, TruthStream
from online_models.attribution import Label
from online_models.config import EngineConfig
from online_models.decode import decode_dict
from online_models.evaluation import BinaryScore
from online_models.events import Campaign
from online_models.runner import Runner


@dataclass
class TruthCheck:
    """Scores of the model and of the truth on the same labels."""

    click_model: BinaryScore = field(default_factory=BinaryScore)
    click_truth: BinaryScore = field(default_factory=BinaryScore)
    last_day_model: BinaryScore = field(default_factory=BinaryScore)
    last_day_truth: BinaryScore = field(default_factory=BinaryScore)
    conversion_model: BinaryScore = field(default_factory=BinaryScore)
    conversion_truth: BinaryScore = field(default_factory=BinaryScore)
    progressive: dict[str, Any] = field(default_factory=dict)  # the engine's own scores
    gated: dict[str, str] = field(default_factory=dict)  # at the end of the stream

    def summary(self) -> dict[str, Any]:
        def auc(s: BinaryScore) -> float | None:
            return round(s.auc, 4) if s.n and 0 < s.y_sum < s.n else None

        def cal(s: BinaryScore) -> float | None:
            return round(s.calibration, 4) if s.y_sum else None

        return {
            "click_labels": self.click_model.n,
            "click_auc_model": auc(self.click_model),
            "click_auc_truth": auc(self.click_truth),
            "last_day_auc_model": auc(self.last_day_model),
            "last_day_auc_truth": auc(self.last_day_truth),
            "click_calibration": cal(self.click_model),
            "conversion_labels": self.conversion_model.n,
            "conversion_calibration": cal(self.conversion_model),
            "conversion_calibration_truth": cal(self.conversion_truth),
            "conversion_auc_model": auc(self.conversion_model),
            "conversion_auc_truth": auc(self.conversion_truth),
            "gated": self.gated,
        }


def _listening(
    expire: Callable[[], list[Label]], listen: Callable[[list[Label]], list[Label]]
) -> Callable[[], list[Label]]:
    return lambda: listen(expire())


def run_truth(stream: TruthStream, cfg: EngineConfig | None = None) -> TruthCheck:
    """Feed the stream to a Runner and score what its labels reveal (module docstring)."""
    cfg = cfg or EngineConfig()
    runner = Runner(replace(cfg, knowledge_delay_ms=0))
    models = runner.knowledge.models
    out = TruthCheck()
    times = [e["ts"] for t, e in stream.events if t != "campaigns"]
    last_day = (max(times) // DAY_MS) * DAY_MS if times else 0

    def listen(labels: list[Label]) -> list[Label]:
        for lb in labels:
            if lb.kind == "click":
                p = models.click.p_one(lb.x)
                truth = stream.p_click[lb.impression_id]
                out.click_model.update(p, lb.y)
                out.click_truth.update(truth, lb.y)
                if lb.ts >= last_day:
                    out.last_day_model.update(p, lb.y)
                    out.last_day_truth.update(truth, lb.y)
            elif lb.kind == "conversion" and lb.p >= 0:
                out.conversion_model.update(lb.p, lb.y)
                out.conversion_truth.update(stream.p_conversion[lb.impression_id], lb.y)
        return labels

    for engine in runner.engines:
        engine.attribution.expire = _listening(engine.attribution.expire, listen)  # type: ignore[method-assign]
    for topic, raw in stream.events:
        ev = decode_dict(topic, raw)
        if isinstance(ev, Campaign):
            runner.set_campaign(ev)
        else:
            runner.feed(topic, ev)
    out.progressive = models.summary()
    out.gated = models.gated()
    return out
