"""Sequence-aware recommendation knowledge: sequential rules, a session index for
session-based kNN, and how often users go back to an item they already viewed.

All three are shared knowledge (`online_models.knowledge`), learned online from the
compact updates the engines emit (`Transition`, `SessionClick`, `Revisit`), and
every one is bounded:

* `SequentialRules`: per item at most `max_next` followers (the strongest are kept
  when a row reaches twice that), rules only up to `lookback` steps apart, at most
  `max_items` rows (the lightest half is dropped when exceeded).
* `SessionIndex`: at most `max_sessions` sessions (the least recently updated is
  evicted), each with its last `max_session_items` distinct items, and per item the
  `sessions_per_item` most recently updated sessions that contain it (at most
  `max_items` items indexed).
* `RevisitStats`: one counter per distance up to `max_distance`.

The current session itself is user state: the engine passes the user's latest
distinct items (from the profile) to `SessionIndex.neighbour_scores`.

>>> rules = SequentialRules(max_next=10, lookback=2, max_items=100)
>>> rules.observe("a", "b", 1); rules.observe("a", "c", 1); rules.observe("a", "c", 2)
>>> sorted(rules.rows["a"].items()), rules.totals["a"]
([('b', 1.0), ('c', 1.5)], 2.5)
>>> idx = SessionIndex(max_sessions=10, sessions_per_item=5, max_session_items=5,
...                    max_items=100)
>>> for key, items in (("s1", "abc"), ("s2", "abd"), ("s3", "xy")):
...     for t, item in enumerate(items):
...         idx.observe(key, item, 1_000 * t)
>>> scores = {}
>>> votes = idx.neighbour_scores(["a", "b"], "me", 3_000, scores, 1.0, NeighbourParams())
>>> sorted(scores, key=lambda i: (-scores[i], i)), len(votes)
(['b', 'a', 'c', 'd'], 2)
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from online_models.config import EngineConfig
from online_models.profile import Profile
from online_models.snapshot import Restorable

_by_weight = itemgetter(1)


class SequentialRules(Restorable):
    """Sequential rules: weighted transitions prev -> next within a session, a rule
    `distance` steps apart weighing 1 / distance (session-rec's SR, learned online).

    `score` turns the row of an item into the share of the weight of everything that
    followed that item (followers trimmed away still count in the total, so the
    shares stay honest estimates of "what comes next")."""

    def __init__(self, max_next: int, lookback: int, max_items: int, prior: float = 0.0) -> None:
        self.max_next = max_next
        self.lookback = lookback
        self.max_items = max_items
        self.prior = prior
        self.rows: dict[str, dict[str, float]] = {}
        self.totals: dict[str, float] = {}

    def observe(self, prev: str, item: str, distance: int) -> None:
        if distance > self.lookback or distance < 1:
            return
        w = 1.0 / distance
        row = self.rows.get(prev)
        if row is None:
            row = self.rows[prev] = {}
            if len(self.rows) > self.max_items:
                self._prune()
        row[item] = row.get(item, 0.0) + w
        self.totals[prev] = self.totals.get(prev, 0.0) + w
        if len(row) > 2 * self.max_next:
            keep = heapq.nlargest(self.max_next, row.items(), key=_by_weight)
            row.clear()
            row.update(keep)

    def score(self, last: str, scores: dict[str, float], weight: float) -> None:
        """Add weight x P(next | last) to `scores` (the total has `prior` added, so the
        rules of a rarely seen item weigh less than their raw shares)."""
        row = self.rows.get(last)
        if not row:
            return
        f = weight / (self.totals[last] + self.prior)
        get = scores.get
        for item, v in row.items():
            scores[item] = get(item, 0.0) + v * f

    def _prune(self) -> None:
        keep = heapq.nlargest(self.max_items // 2, self.totals.items(), key=_by_weight)
        self.totals = dict(keep)
        self.rows = {i: self.rows[i] for i in self.totals if i in self.rows}

    def to_state(self) -> dict[str, Any]:
        return {"rows": self.rows, "totals": self.totals}

    def _restore(self, s: dict[str, Any]) -> None:
        self.rows = {i: {j: float(v) for j, v in r.items()} for i, r in s["rows"].items()}
        self.totals = {i: float(v) for i, v in s["totals"].items()}


@dataclass(frozen=True)
class NeighbourParams:
    """How session neighbours are found and weighed (V-SKNN / STAN family).

    lookback: the latest session items used to look neighbours up; neighbors: how
    many of the most similar sessions vote; position_decay: a session item d steps
    back matches with weight exp(-d / position_decay); half_life_ms: a neighbour
    last updated t ms ago votes with weight 2**(-t / half_life_ms); match_decay: a
    neighbour's item q steps away from its latest item shared with the session gets
    exp(-q / match_decay) of the neighbour's vote, for q up to `window` (further items
    would add little and cost as much).
    """

    lookback: int = 3
    neighbors: int = 20
    position_decay: float = 2.0
    half_life_ms: float = 24 * 3_600_000.0
    match_decay: float = 2.0
    window: int = 3


_TABLE = 256  # distances beyond this weigh as much as this one (sessions are bounded)


class SessionIndex(Restorable):
    """Recent sessions (their latest distinct items) and, per item, the sessions that
    contain it, most recently updated last."""

    def __init__(
        self,
        max_sessions: int,
        sessions_per_item: int,
        max_session_items: int,
        max_items: int,
        max_age_ms: float = math.inf,
    ) -> None:
        self.max_sessions = max_sessions
        # A session not updated for this long is dropped: its vote has decayed to
        # nothing (2**-14 at 14 half-lives), and without it the index of a steady
        # population keeps filling until max_sessions, however old its sessions are.
        self.max_age_ms = max_age_ms
        self.sessions_per_item = sessions_per_item
        self.max_session_items = max_session_items
        self.max_items = max_items
        # key -> [last update ts, distinct items oldest first]; dict order = update order
        self.sessions: dict[str, list[Any]] = {}
        self.by_item: dict[str, list[str]] = {}
        self._tables: tuple[float, float, list[float], list[float]] | None = None

    def observe(self, key: str, item: str, ts: int) -> None:
        sessions = self.sessions
        entry = sessions.pop(key, None)
        if entry is None:
            entry = [ts, []]
        elif ts > entry[0]:
            entry[0] = ts
        items: list[str] = entry[1]
        if item in items:
            items.remove(item)
        items.append(item)
        if len(items) > self.max_session_items:
            del items[0]
        sessions[key] = entry
        if len(sessions) > self.max_sessions:
            del sessions[next(iter(sessions))]
        horizon = ts - self.max_age_ms
        while True:  # least recently updated first (dict order); at most a few a call
            oldest = next(iter(sessions))
            if sessions[oldest][0] >= horizon or oldest == key:
                break
            del sessions[oldest]
        keys = self.by_item.get(item)
        if keys is None:
            keys = self.by_item[item] = []
            if len(self.by_item) > self.max_items:
                self._prune()
        if keys and keys[-1] == key:
            return
        if key in keys:
            keys.remove(key)
        keys.append(key)
        if len(keys) > self.sessions_per_item:
            del keys[0]

    def _prune(self) -> None:
        """Drop evicted sessions from the item lists, then the items whose newest
        session is oldest until half of `max_items` remain."""
        live = self.sessions
        rank = {k: n for n, k in enumerate(live)}
        pruned = {}
        for item, keys in self.by_item.items():
            kept = [k for k in keys if k in live]
            if kept:
                pruned[item] = kept
        if len(pruned) > self.max_items // 2:
            newest = heapq.nlargest(
                self.max_items // 2, pruned.items(), key=lambda kv: rank.get(kv[1][-1], -1)
            )
            pruned = dict(newest)
        self.by_item = pruned

    def _weights(self, p: NeighbourParams) -> tuple[list[float], list[float]]:
        t = self._tables
        if t is None or t[0] != p.position_decay or t[1] != p.match_decay:
            pos = [math.exp(-d / p.position_decay) for d in range(_TABLE)]
            match = [math.exp(-d / p.match_decay) for d in range(_TABLE)]
            t = self._tables = (p.position_decay, p.match_decay, pos, match)
        return t[2], t[3]

    def neighbour_scores(
        self,
        session: list[str],
        key: str,
        now: int,
        scores: dict[str, float],
        weight: float,
        p: NeighbourParams,
    ) -> list[tuple[float, list[str]]]:
        """Add `weight` x the neighbours' votes to `scores` (the votes of one call sum
        to at most 1 per item: each neighbour's vote is its share of the similarity);
        return the voting neighbours as (similarity, items).

        session: the user's current session, distinct items, oldest first; key: its
        key in the index (it is not its own neighbour)."""
        pos_w, match_w = self._weights(p)
        n = len(session)
        start = max(0, n - p.lookback)
        cand: dict[str, float] = {}
        get = cand.get
        by_item = self.by_item
        for i in range(start, n):
            w = pos_w[min(n - 1 - i, _TABLE - 1)]
            for other in by_item.get(session[i], ()):
                cand[other] = get(other, 0.0) + w
        cand.pop(key, None)
        if not cand:
            return []
        ranked = (
            sorted(cand.items(), key=_by_weight, reverse=True)[: p.neighbors]
            if len(cand) > p.neighbors
            else cand.items()
        )
        sessions = self.sessions
        half_life = p.half_life_ms
        votes = []
        total = 0.0
        for other, sim in ranked:
            entry = sessions.get(other)
            if entry is None:  # evicted since it was indexed
                continue
            sim *= 2.0 ** ((entry[0] - now) / half_life) if entry[0] < now else 1.0
            total += sim
            votes.append((sim, entry[1]))
        if total <= 0.0:
            return []
        shared = set(session[start:])
        sget = scores.get
        window = min(p.window, _TABLE - 1)
        # The match weight of the item at offset q from the shared one, q = -window..window.
        by_offset = match_w[window:0:-1] + match_w[: window + 1]
        scale = weight / total
        for sim, items in votes:
            m = len(items) - 1
            while m > 0 and items[m] not in shared:
                m -= 1
            f = scale * sim
            lo = m - window if m > window else 0
            # Fewer items than offsets when the shared item is near the session's end.
            near = zip(items[lo : m + window + 1], by_offset[lo - m + window :], strict=False)
            for item, mw in near:
                scores[item] = sget(item, 0.0) + f * mw
        return votes

    def to_state(self) -> dict[str, Any]:
        return {"sessions": self.sessions, "by_item": self.by_item}

    def _restore(self, s: dict[str, Any]) -> None:
        self.sessions = {k: [int(e[0]), [str(i) for i in e[1]]] for k, e in s["sessions"].items()}
        self.by_item = {i: [str(k) for k in keys] for i, keys in s["by_item"].items()}


class RevisitStats(Restorable):
    """How often the next item is one the session already holds, by how far back:
    counts[0] = positions seen, counts[d] = next item was the d-th latest distinct
    session item (1 = the item just viewed). Halved when counts[0] reaches `horizon`
    so that the rates follow the recent stream.

    >>> r = RevisitStats(max_distance=3)
    >>> for d in (1, 1, 0, 2):
    ...     r.observe(d)
    >>> r.rate(1), r.rate(2), r.rate(3)
    (0.5, 0.25, 0.0)
    """

    def __init__(self, max_distance: int, horizon: float = 1_000_000.0) -> None:
        self.max_distance = max_distance
        self.horizon = horizon
        self.counts = [0.0] * (max_distance + 1)

    def observe(self, distance: int) -> None:
        c = self.counts
        c[0] += 1.0
        if 0 < distance <= self.max_distance:
            c[distance] += 1.0
        if c[0] >= self.horizon:
            self.counts = [v / 2.0 for v in c]

    def rate(self, distance: int) -> float:
        c = self.counts
        return c[distance] / c[0] if c[0] and 0 < distance <= self.max_distance else 0.0

    def score(self, session: list[str], scores: dict[str, float], weight: float) -> None:
        """Add weight x P(next = that item) to each session item."""
        c = self.counts
        if not c[0]:
            return
        f = weight / c[0]
        get = scores.get
        top = min(len(session), self.max_distance)
        for d in range(1, top + 1):
            if c[d]:
                item = session[-d]
                scores[item] = get(item, 0.0) + c[d] * f

    def to_state(self) -> list[float]:
        return list(self.counts)

    def _restore(self, s: list[float]) -> None:
        counts = [float(v) for v in s][: self.max_distance + 1]
        self.counts = counts + [0.0] * (self.max_distance + 1 - len(counts))


def current_session(p: Profile, ts: int, cfg: EngineConfig) -> list[str]:
    """The user's current session at `ts`: their latest distinct items (oldest first,
    at most `cfg.max_session_items`) back to the first gap longer than
    `cfg.session_gap_ms`; empty when the latest item is older than that gap.

    >>> from online_models.profile import Profile
    >>> p = Profile(user_id="u", recent_items=[["a", 0], ["b", 4_000_000], ["c", 4_060_000]])
    >>> current_session(p, 4_100_000, EngineConfig()), current_session(p, 9_000_000, EngineConfig())
    (['b', 'c'], [])
    """
    items = p.recent_items
    gap = cfg.session_gap_ms
    newer = ts
    start = len(items)
    floor = max(0, start - cfg.max_session_items)
    while start > floor:
        t = int(items[start - 1][1])
        if newer - t > gap:
            break
        newer = t
        start -= 1
    return [str(i) for i, _ in items[start:]]


def session_key(p: Profile) -> str:
    """The key of the user's current session in the session index: the input's
    session id when events carry one, else the user id and session number."""
    if p.recent_sessions:
        return str(p.recent_sessions[-1][0])
    return f"{p.user_id}#{p.sessions}"
