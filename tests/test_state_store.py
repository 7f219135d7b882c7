"""User state over the Faust table's bytes: the agent's cache must never hold a state
older than the table (a stale cache silently loses updates)."""

from __future__ import annotations

from online_models.state import UserState, decode_state, encode_state
from streams.state_store import StateStore


def test_writes_go_to_the_table_as_bytes_and_reads_decode_them():
    table: dict[str, bytes] = {}
    store = StateStore(table)
    state = UserState.new("u1")
    state.applied["clickstream"] = [7]
    store["u1"] = state
    assert decode_state(table["u1"]).applied == {"clickstream": [7]}
    assert store.get("u1") is state
    assert store.get("nobody") is None


def test_view_reads_during_recovery_never_plant_stale_cache_entries():
    """A view peeks while recovery has applied only an old changelog record; once
    recovery writes the newer record, the agent must read the newer one."""
    table: dict[str, bytes] = {}
    store = StateStore(table)
    old, new = UserState.new("u1"), UserState.new("u1")
    old.applied["clickstream"], new.applied["clickstream"] = [1], [2]
    table["u1"] = encode_state(old)  # recovery, part way
    assert store.peek("u1").applied == {"clickstream": [1]}
    table["u1"] = encode_state(new)  # recovery completes
    assert store.get("u1").applied == {"clickstream": [2]}


def test_forget_cache_rereads_the_table_and_pop_deletes_everywhere():
    table: dict[str, bytes] = {}
    store = StateStore(table)
    store["u1"] = UserState.new("u1")
    newer = UserState.new("u1")
    newer.applied["orders"] = [3]
    table["u1"] = encode_state(newer)  # rewritten underneath, as recovery does
    store.forget_cache()
    assert store.get("u1").applied == {"orders": [3]}
    store.pop("u1")
    assert "u1" not in table and store.get("u1") is None
    assert len(store) == 0


def test_cache_keeps_only_the_most_recently_used_states():
    """The cache is bounded (memory), and an evicted user's state is the table's."""
    table: dict[str, bytes] = {}
    store = StateStore(table, max_cached=3)
    for i in range(10):
        state = UserState.new(f"u{i}")
        state.applied["clickstream"] = [i]
        store[f"u{i}"] = state
    assert list(store.cache) == ["u7", "u8", "u9"]
    assert store.get("u7") is store.cache["u7"]  # a hit makes u7 the newest
    store["u10"] = UserState.new("u10")
    assert list(store.cache) == ["u9", "u7", "u10"]
    evicted = store.get("u0")
    assert evicted is not None and evicted.applied == {"clickstream": [0]}
    assert len(store.cache) == 3 and len(store) == 11


def test_a_full_scan_reads_every_user_without_filling_the_cache():
    table: dict[str, bytes] = {}
    store = StateStore(table, max_cached=2)
    for i in range(5):
        store[f"u{i}"] = UserState.new(f"u{i}")
    assert sorted(user for user, _ in store.items()) == [f"u{i}" for i in range(5)]
    assert list(store.cache) == ["u3", "u4"]
