"""The recommender the engine serves: sequence-aware candidates blended with
popularity, all read from the shared knowledge.

Every part adds `weight x` (about) a probability of being the next item:

* sequential rules of the session's latest item and, with a smaller weight, of the
  item before it (`SequentialRules.score`),
* session neighbours (`SessionIndex.neighbour_scores`, V-SKNN / STAN family),
* the session's own items at their revisit rates (`RevisitStats.score`), when
  `rec_allow_seen` is 1 ("next click") or 2 (all but the item in view, which the
  engine excludes); with 0 ("you may also like") every item of the session is
  excluded instead,
* symmetric co-visitation of the latest `rec_covis_lookback` items
  (`Recommender.add_covisitation`, the recommender before issue 10): a small weight
  adds what sessions hold on either side of an item,
* its second hop from the latest item (`Recommender.add_covisitation_2hop`): what the
  latest item's strongest co-visits are co-visited with, which reaches items never
  seen with the latest item itself,
* category affinity and trending, with small weights: they order the tail and fill
  the list for cold sessions (an item never followed by anything, a new user).

Items the user bought within `exclude_purchased_ms` are excluded. The strategy
names the part that put the top item first.

>>> from online_models.config import EngineConfig
>>> r = SessionRecommender(EngineConfig())
>>> for t, (key, items) in enumerate([("s1", "ab"), ("s2", "ab"), ("s3", "ac")]):
...     for n, item in enumerate(items):
...         r.base.observe_item(item, "cat", t * 1000 + n)
...         r.index.observe(key, item, t * 1000 + n)
...         if n:
...             r.rules.observe(items[n - 1], item, 1)
>>> items, strategy = r.recommend(["a"], "me", 5_000, {}, set(), k=3)
>>> [i.item_id for i in items], strategy
(['b', 'a', 'c'], 'sequential_rules')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from online_models.config import EngineConfig
from online_models.outputs import RecommendedItem
from online_models.recommend import Recommender
from online_models.sessions import NeighbourParams, RevisitStats, SequentialRules, SessionIndex
from online_models.snapshot import Restorable

# Every strategy a recommendation can name (the part that put its top item first).
STRATEGIES = frozenset(
    {"repeat", "sequential_rules", "session_knn", "covisitation", "affinity", "trending"}
)


class SessionRecommender(Restorable):
    """Popularity and co-visitation (`base`), sequential rules, the session index and
    revisit rates, with the blend weights of the engine config."""

    def __init__(self, cfg: EngineConfig) -> None:
        self.base = Recommender(
            cfg.covis_neighbors,
            cfg.covis_lookback,
            cfg.covis_half_life_ms,
            cfg.trending_half_life_ms,
            cfg.max_items,
            cfg.covis_top,
        )
        self.rules = SequentialRules(cfg.sr_max_next, cfg.sr_lookback, cfg.max_items, cfg.sr_prior)
        self.index = SessionIndex(
            cfg.max_sessions,
            cfg.knn_sessions_per_item,
            cfg.max_session_items,
            cfg.max_items,
            float(cfg.knn_max_age_ms),
        )
        self.revisits = RevisitStats(cfg.max_session_items)
        self.neighbours = NeighbourParams(
            cfg.knn_lookback,
            cfg.knn_neighbors,
            cfg.knn_position_decay,
            float(cfg.knn_half_life_ms),
            cfg.knn_match_decay,
            cfg.knn_vote_window,
        )
        self.covis_lookback = cfg.rec_covis_lookback
        self.allow_seen = cfg.rec_allow_seen != 0  # 2: the engine excludes the item in view
        self.w_sr = cfg.rec_sr_weight
        self.w_sr_prev = cfg.rec_sr_prev_weight
        self.w_knn = cfg.rec_knn_weight
        self.w_repeat = cfg.rec_repeat_weight
        self.w_covis = cfg.rec_covis_weight
        self.w_covis2 = cfg.rec_covis2_weight
        self.covis2_hops = cfg.rec_covis2_hops
        self.w_affinity = cfg.rec_affinity_weight
        self.w_trending = cfg.rec_trending_weight

    def recommend(
        self,
        session: list[str],
        key: str,
        ts: int,
        affinity: Mapping[str, float],
        exclude: set[str],
        k: int,
    ) -> tuple[list[RecommendedItem], str]:
        """Top-k for a user whose current session holds `session` (distinct items,
        oldest first; `key` in the session index) at event time `ts`."""
        scores: dict[str, float] = {}
        last = session[-1] if session else None
        if last is not None and self.w_sr:
            self.rules.score(last, scores, self.w_sr)
        if len(session) > 1 and self.w_sr_prev:
            self.rules.score(session[-2], scores, self.w_sr_prev)
        votes: list[tuple[float, list[str]]] = []
        if session and self.w_knn:
            votes = self.index.neighbour_scores(
                session, key, ts, scores, self.w_knn, self.neighbours
            )
        if session and self.w_repeat and self.allow_seen:
            self.revisits.score(session, scores, self.w_repeat)
        base = self.base
        if self.w_covis and session:
            base.add_covisitation(session[-self.covis_lookback :], scores, self.w_covis)
        if self.w_covis2 and last is not None:
            base.add_covisitation_2hop(last, self.covis2_hops, scores, self.w_covis2)
        has_affinity = bool(self.w_affinity) and base.add_affinity(
            affinity, scores, self.w_affinity
        )
        if self.w_trending:
            base.add_trending(scores, self.w_trending)
        if not self.allow_seen:
            for item in session:
                scores.pop(item, None)
        for item in exclude:
            scores.pop(item, None)
        ranked = base.top(scores, k)
        if not ranked:
            return [], "none"
        return ranked, self._strategy(ranked[0].item_id, session, votes, has_affinity)

    def _strategy(
        self,
        top: str,
        session: list[str],
        votes: list[tuple[float, list[str]]],
        has_affinity: bool,
    ) -> str:
        """The part that scored the top item (checked for that one item only)."""
        if self.allow_seen and self.w_repeat and top in session:
            return "repeat"
        rows = self.rules.rows
        if self.w_sr and any(top in rows.get(i, ()) for i in session[-2:]):
            return "sequential_rules"
        if any(top in items for _, items in votes):
            return "session_knn"
        if self.w_covis:
            tops = self.base.covis_top
            if any(top in tops.get(i, ()) for i in session[-self.covis_lookback :]):
                return "covisitation"
        covis2 = self.w_covis2 and session
        if covis2 and top in self.base.second_hop(session[-1], self.covis2_hops):
            return "covisitation"
        return "affinity" if has_affinity else "trending"

    def to_state(self) -> dict[str, Any]:
        return {
            **self.base.to_state(),
            "rules": self.rules.to_state(),
            "session_index": self.index.to_state(),
            "revisits": self.revisits.to_state(),
        }

    def _restore(self, s: dict[str, Any]) -> None:
        self.base._restore(s)
        # Snapshots written before issue 10 hold only the base part.
        if "rules" in s:
            self.rules._restore(s["rules"])
            self.index._restore(s["session_index"])
            self.revisits._restore(s["revisits"])
