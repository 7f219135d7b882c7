"""One round trip for every stateful domain class, in the spirit of River's
`check_estimator`: built and fed real updates (a synthetic stream through a partition
engine), `Cls.from_state(orjson.loads(orjson.dumps(obj.to_state())), **kwargs)` gives an
object with the same state, byte for byte, that predicts what the original predicts.

`test_every_stateful_class_is_listed` fails when a class of `online_models` defines
`to_state` without being listed here (and without a classmethod `from_state`)."""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
import pytest
from test_domain_engine import stream

import online_models
from backtest.synthetic import campaigns
from online_models.attribution import Attribution, Pending
from online_models.bidding import Pacer, TrafficProfile, ValueAverage
from online_models.blend import SessionRecommender
from online_models.config import EngineConfig
from online_models.engine import PartitionEngine
from online_models.evaluation import BinaryScore, RegressionScore, RunningRate
from online_models.events import Campaign
from online_models.features import LEARNING_RATE_SCALE, impression_features
from online_models.knowledge import SharedKnowledge
from online_models.learner import Models
from online_models.models import OnlineLogistic, OnlineRevenue
from online_models.promotions.decider import Decider
from online_models.promotions.uplift import (
    ClassTransformationUplift,
    TwoModelUplift,
    UpliftSelector,
)
from online_models.recommend import Recommender
from online_models.segment_counts import SegmentCounts
from online_models.segments import Segmenter
from online_models.sessions import RevisitStats, SequentialRules, SessionIndex
from online_models.snapshot import Restorable
from online_models.state import UserState
from online_models.toplist import TopList

CFG = EngineConfig(partitions=1)


@functools.lru_cache(maxsize=1)
def _fed() -> tuple[PartitionEngine, dict[str, UserState], int]:
    """An engine that has seen a synthetic stream (clicks, orders, impressions of three
    campaigns), its user states and the time of its last event."""
    camps = {c["campaign_id"]: msgspec.convert(c, Campaign) for c in campaigns(3)}
    eng, states = PartitionEngine(CFG, 0, camps), {}
    events = stream(250, 2, 5)
    for topic, ev in events:
        states[ev.user_id] = eng.process(topic, ev, states.get(ev.user_id)).state
    assert eng.knowledge.applied > 0
    knowledge = eng.knowledge
    knowledge.apply([u for _, _, u in sorted(knowledge.pending)])  # every update learned
    knowledge.pending = []
    return eng, states, events[-1][1].ts


def _features() -> list[dict[str, float]]:
    eng, states, ts = _fed()
    return [
        impression_features(states[u].profile, c, "top", {"device": "ios"}, ts, CFG.hash_bits)
        for u in sorted(states)[:15]
        for c in eng.campaigns.values()
    ]


def _sessions() -> list[tuple[list[str], str]]:
    _, states, _ = _fed()
    return [
        ([str(i) for i, _ in states[u].profile.recent_items[-3:]], u) for u in sorted(states)[:15]
    ]


@dataclass(frozen=True)
class Case:
    """How to reach a fed instance, the constructor arguments `from_state` takes, and
    what it predicts (None: it only keeps state)."""

    cls: type
    build: Callable[[], Any]
    kwargs: Callable[[], dict[str, Any]]
    predict: Callable[[Any], Any] | None = None


def _engine() -> PartitionEngine:
    return _fed()[0]


def _knowledge() -> SharedKnowledge:
    return _engine().knowledge


def _recommend(recs: Any) -> Any:
    _, _, ts = _fed()
    return [recs.recommend(s, key, ts, {}, set(), 5) for s, key in _sessions()]


def _labels(a: Attribution) -> list[tuple[str, bool, str, int]]:
    """Every label still to come: the watermark moved past every open window."""
    a.observe(_fed()[2] + 30 * 86_400_000)
    return [(lb.kind, lb.y, lb.impression_id, lb.ts) for lb in a.expire()]


def _models_kwargs() -> dict[str, Any]:
    return {
        "learning_rate": CFG.learning_rate,
        "l2": CFG.l2,
        "click_prior": CFG.click_prior,
        "conversion_prior": CFG.conversion_prior,
        "horizon": CFG.base_rate_horizon,
    }


CASES = [
    Case(
        PartitionEngine,
        _engine,
        lambda: {"cfg": CFG, "partition": 0, "campaigns": _engine().campaigns},
        lambda e: [e.models.predict(x) for x in _features()],
    ),
    Case(
        SharedKnowledge,
        _knowledge,
        lambda: {"cfg": CFG, "campaigns": _engine().campaigns},
        lambda k: ([k.predict(x) for x in _features()], _recommend(k)),
    ),
    Case(
        Attribution,
        lambda: _engine().attribution,
        lambda: {
            "click_window": CFG.click_window_ms,
            "conversion_window": CFG.conversion_window_ms,
            "lateness": CFG.allowed_lateness_ms,
            "max_pending": CFG.max_pending_impressions,
            "max_clicks_per_user": CFG.max_pending_clicks_per_user,
        },
        _labels,
    ),
    Case(
        Pending,
        lambda: Pending("i1", "u1", "c1", _fed()[2], _features()[0], 0.4, True, 0.12, True, 0.05),
        dict,
    ),
    Case(
        Models,
        lambda: _knowledge().models,
        _models_kwargs,
        lambda m: ([m.predict(x) for x in _features()], m.gated(), m.summary()),
    ),
    Case(
        OnlineLogistic,
        lambda: _knowledge().models.click,
        lambda: {"scale": LEARNING_RATE_SCALE},
        lambda m: [m.predict_proba_one(x) for x in _features()],
    ),
    Case(
        OnlineRevenue,
        lambda: _knowledge().models.revenue,
        dict,
        lambda m: [m.predict_one(x) for x in _features()],
    ),
    Case(RunningRate, lambda: _knowledge().models.conversion_rate, dict, lambda r: r.value),
    Case(BinaryScore, lambda: _knowledge().models.click_score, dict, lambda s: s.summary()),
    Case(RegressionScore, lambda: _knowledge().models.revenue_score, dict, lambda s: s.summary()),
    Case(
        Segmenter,
        lambda: _knowledge().segmenter,
        dict,
        lambda s: [s.label(dict(c)) for c in s.model.centers.values()],
    ),
    Case(SegmentCounts, lambda: _knowledge().segment_counts, dict, lambda c: c.members),
    Case(
        Pacer,
        lambda: _knowledge().pacer,
        lambda: {
            "gain": CFG.pacing_gain,
            "low": CFG.pacing_min,
            "high": CFG.pacing_max,
            "integral": CFG.pacing_integral,
            "window_ms": CFG.pacing_window_ms,
            "traffic_time": bool(CFG.pacing_traffic_time),
            "traffic_decay": CFG.pacing_traffic_decay,
            "settle": CFG.pacing_settle,
            "settle_within": CFG.pacing_settle_within,
        },
        lambda p: {c: p.factor(c) for c in sorted(p.campaigns)},
    ),
    Case(
        TrafficProfile,
        lambda: _knowledge().pacer.traffic,
        lambda: {"decay": CFG.pacing_traffic_decay},
        lambda t: [t.elapsed(_fed()[2] + h * 3_600_000) for h in range(24)],
    ),
    Case(
        ValueAverage,
        lambda: _knowledge().costs,  # (this stream has no value objective: values empty)
        dict,
        lambda v: [v.update(c, 1.0) for c in sorted(v.means)],
    ),
    Case(
        SessionRecommender,
        lambda: _knowledge().recs,
        lambda: {"cfg": CFG},
        _recommend,
    ),
    Case(
        Recommender,
        lambda: _knowledge().recommender,
        lambda: {
            "neighbors": CFG.covis_neighbors,
            "lookback": CFG.covis_lookback,
            "covis_half_life": CFG.covis_half_life_ms,
            "trending_half_life": CFG.trending_half_life_ms,
            "max_items": CFG.max_items,
            "top_neighbors": CFG.covis_top,
        },
        lambda r: (r.trending_items(10), [_scored(r.add_covisitation, s) for s, _ in _sessions()]),
    ),
    Case(
        TopList,
        lambda: _knowledge().recommender.trending,
        lambda: {"n": _knowledge().recommender.trending.n},
        lambda t: t.ranked(10),
    ),
    Case(
        SequentialRules,
        lambda: _knowledge().recs.rules,
        lambda: {
            "max_next": CFG.sr_max_next,
            "lookback": CFG.sr_lookback,
            "max_items": CFG.max_items,
            "prior": CFG.sr_prior,
        },
        lambda r: [_scored(r.score, s[-1]) for s, _ in _sessions() if s],
    ),
    Case(
        SessionIndex,
        lambda: _knowledge().recs.index,
        lambda: {
            "max_sessions": CFG.max_sessions,
            "sessions_per_item": CFG.knn_sessions_per_item,
            "max_session_items": CFG.max_session_items,
            "max_items": CFG.max_items,
        },
        lambda i: [
            _scored(
                lambda sc, w, s=s, key=key: i.neighbour_scores(
                    s, key, _fed()[2], sc, w, _knowledge().recs.neighbours
                ),
                None,
            )
            for s, key in _sessions()
            if s
        ],
    ),
    Case(
        RevisitStats,
        lambda: _knowledge().recs.revisits,
        lambda: {"max_distance": CFG.max_session_items},
        lambda r: [r.rate(d) for d in range(1, CFG.max_session_items + 1)],
    ),
]


@functools.lru_cache(maxsize=1)
def _promo() -> Decider:
    """A promotion decider fed the known-truth exposures, with decisions under a budget."""
    from backtest.promo_truth import P_TREATED, exposures
    from online_models.promotions.offers import Offer

    d = Decider(k=2)
    offer = Offer(offer_id="o1", cost=1.0, margin=20.0, budget=50.0)
    for i, ev in enumerate(exposures(seed=5, n=1200)):
        d.learn(ev["x"], ev["segment"], ev["treated"], ev["bought"], P_TREATED)
        d.decide(f"u{i % 300}", offer, ev["x"], 1_700_000_000_000 + i * 60_000, ev["segment"])
    return d


_PROMO_X = [{"bias": 1.0, "frequency": f, "discount_affinity": 1 - f} for f in (0.0, 0.5, 1.0)]
CASES += [
    Case(
        TwoModelUplift,
        lambda: _promo().uplift.two_model,
        dict,
        lambda m: [m.predict_one(x) for x in _PROMO_X],
    ),
    Case(
        ClassTransformationUplift,
        lambda: _promo().uplift.class_transformation,
        dict,
        lambda m: [m.predict_one(x) for x in _PROMO_X],
    ),
    Case(
        UpliftSelector,
        lambda: _promo().uplift,
        dict,
        lambda m: [m.predict_one(x) for x in _PROMO_X],
    ),
    Case(
        Decider,
        _promo,
        dict,
        lambda d: [d.uplift.predict_one(d.features(x, "north")) for x in _PROMO_X],
    ),
]


def _scored(score: Callable[..., Any], arg: Any) -> dict[str, float]:
    """The scores a `score(..., scores, weight)`-style method adds to an empty dict."""
    scores: dict[str, float] = {}
    if arg is None:
        score(scores, 1.0)
    else:
        score(arg, scores, 1.0)
    return scores


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.cls.__name__)
def test_state_round_trip(case: Case) -> None:
    obj = case.build()
    assert isinstance(obj, case.cls)
    saved = orjson.dumps(obj.to_state())
    assert len(saved) > 2, "fed nothing: the round trip would prove nothing"
    restored = case.cls.from_state(orjson.loads(saved), **case.kwargs())
    assert type(restored) is case.cls and restored is not obj
    assert orjson.dumps(restored.to_state()) == saved
    if case.predict is not None:
        assert case.predict(restored) == case.predict(obj)
        # ... and predicting changed neither's state differently.
        assert orjson.dumps(restored.to_state()) == orjson.dumps(obj.to_state())


def _stateful_classes() -> list[type]:
    found = []
    for info in pkgutil.iter_modules(online_models.__path__):
        module = importlib.import_module(f"online_models.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            own = cls.__module__ == module.__name__ and cls is not Restorable
            if own and any("to_state" in vars(k) for k in cls.__mro__ if k is not Restorable):
                found.append(cls)
    return found


def test_every_stateful_class_is_listed() -> None:
    """A class of online_models with `to_state` must be in CASES and have the verb pair:
    a classmethod `from_state` beside it, and no other restore verb."""
    listed = {c.cls for c in CASES}
    stateful = set(_stateful_classes())
    assert stateful, "the introspection found nothing"
    missing = sorted(c.__qualname__ for c in stateful - listed)
    assert not missing, f"stateful classes without a round-trip case: {missing}"
    for cls in stateful:
        assert isinstance(inspect.getattr_static(cls, "from_state"), classmethod), cls
        assert not hasattr(cls, "load_state"), f"{cls.__name__}: use from_state"
