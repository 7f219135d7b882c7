"""User state over a Faust table of raw bytes.

The table holds msgspec-encoded UserState bytes, so its changelog and recovery use
Faust's plain `raw` path. States decoded by the agent are cached here; the cache is
dropped on every rebalance (partitions may move, and recovery rewrites the table
underneath), and views read with `peek`, which never fills it.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

from online_models.state import UserState, decode_state, encode_state


class StateStore:
    def __init__(self, table: MutableMapping[str, bytes]) -> None:
        self.table = table
        self.cache: dict[str, UserState] = {}

    def get(self, user: str) -> UserState | None:
        state = self.cache.get(user)
        if state is None:
            raw = self.table.get(user)
            if raw is None:
                return None
            state = self.cache[user] = decode_state(raw)
        return state

    def peek(self, user: str) -> UserState | None:
        """Read without caching, for views: a read during table recovery must never
        plant a partly recovered state in the cache the agent builds on."""
        state = self.cache.get(user)
        if state is not None:
            return state
        raw = self.table.get(user)
        return None if raw is None else decode_state(raw)

    def __setitem__(self, user: str, state: UserState) -> None:
        self.cache[user] = state
        self.table[user] = encode_state(state)

    def pop(self, user: str) -> None:
        self.cache.pop(user, None)
        if user in self.table:
            del self.table[user]

    def items(self) -> Iterator[tuple[str, UserState]]:
        for user in list(self.table.keys()):
            state = self.get(user)
            if state is not None:
                yield user, state

    def __len__(self) -> int:
        return len(self.table)

    def forget(self, user: str) -> None:
        """Drop one cached state; the next read decodes the last one written."""
        self.cache.pop(user, None)

    def forget_cache(self) -> None:
        self.cache.clear()
