"""User state over a Faust table of raw bytes.

The table holds msgspec-encoded UserState bytes, so its changelog and recovery use
Faust's plain `raw` path. States decoded by the agent are cached here, but only the
`max_cached` most recently used: a decoded state takes about five times its encoded
size (19 KB against 3.9 KB for a user with 256 applied offsets), so caching every
user would cost ~19 KB per user on top of the table, and this share kept growing for
as long as states filled up to their caps (measured with benchmarks/soak.py). A miss
costs one decode (~16 us); a user's events come in bursts, so a small cache serves
most reads (in the soak's stream, 256 states: 91% of reads, 1,000: 94%). The cache is
dropped on every rebalance (partitions may move, and recovery rewrites the table
underneath), and views read with `peek`, which never fills it.

>>> store = StateStore({}, max_cached=2)
>>> for user in ("u1", "u2", "u3"):
...     store[user] = UserState.new(user)
>>> list(store.cache), len(store)          # u1, least recently used, was dropped
(['u2', 'u3'], 3)
>>> store.get("u1").profile.user_id        # decoded again from the table
'u1'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping

from online_models.state import UserState, encode_state, read_state

DEFAULT_MAX_CACHED = 256


class StateStore:
    def __init__(
        self,
        table: MutableMapping[str, bytes],
        max_cached: int = DEFAULT_MAX_CACHED,
        on_unreadable: Callable[[str], None] | None = None,
    ) -> None:
        self.table = table
        self.max_cached = max_cached
        # Called with the user whose stored bytes do not decode: that user starts
        # afresh (the next write replaces the bytes), nothing else is lost.
        self.on_unreadable = on_unreadable
        # Insertion order is recency order: a hit or write moves the user to the end.
        self.cache: dict[str, UserState] = {}

    def _remember(self, user: str, state: UserState) -> None:
        cache = self.cache
        cache.pop(user, None)
        cache[user] = state
        while len(cache) > self.max_cached:
            del cache[next(iter(cache))]

    def get(self, user: str) -> UserState | None:
        state = self.cache.get(user)
        if state is None:
            state = self._read(user)
            if state is None:
                return None
        self._remember(user, state)
        return state

    def _read(self, user: str) -> UserState | None:
        raw = self.table.get(user)
        if raw is None:
            return None
        state = read_state(raw)
        if state is None and self.on_unreadable is not None:
            self.on_unreadable(user)
        return state

    def peek(self, user: str) -> UserState | None:
        """Read without caching, for views: a read during table recovery must never
        plant a partly recovered state in the cache the agent builds on."""
        state = self.cache.get(user)
        if state is not None:
            return state
        return self._read(user)

    def __setitem__(self, user: str, state: UserState) -> None:
        self._remember(user, state)
        self.table[user] = encode_state(state)

    def pop(self, user: str) -> None:
        self.cache.pop(user, None)
        if user in self.table:
            del self.table[user]

    def items(self) -> Iterator[tuple[str, UserState]]:
        """Every user's state; a full scan does not churn the cache."""
        for user in list(self.table.keys()):
            state = self.peek(user)
            if state is not None:
                yield user, state

    def __len__(self) -> int:
        return len(self.table)

    def forget(self, user: str) -> None:
        """Drop one cached state; the next read decodes the last one written."""
        self.cache.pop(user, None)

    def forget_cache(self) -> None:
        self.cache.clear()
