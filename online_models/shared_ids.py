"""One string object per distinct item id and category, not one per event.

Each decoded event carries fresh strings. The structures that keep item ids for long
(co-visitation rows, popularity, top lists, profiles) hold up to 80 co-visits per
item plus list entries, so without sharing, one item's id exists as thousands of
equal strings (~50 bytes each): in the soak benchmark they were the second largest
grower after the co-visit scores themselves. Interned strings are freed like any
other once nothing refers to them, so this adds no lasting state.

>>> from online_models.events import ClickEvent
>>> a = share_ids(ClickEvent(event_id="e1", ts=1_700_000_000_000, user_id="u", type="view",
...                          item_id="".join(["i", "42"]), category="shoes"))
>>> b = share_ids(ClickEvent(event_id="e2", ts=1_700_000_000_000, user_id="u", type="view",
...                          item_id="".join(["i", "4", "2"]), category="shoes"))
>>> a.item_id is b.item_id
True
"""

from __future__ import annotations

from sys import intern
from typing import TypeVar

from online_models.events import ClickEvent, OrderEvent

E = TypeVar("E")


def share_ids(ev: E) -> E:
    """Replace the event's item ids and categories by their shared copies."""
    if isinstance(ev, ClickEvent):
        if ev.item_id is not None:
            ev.item_id = intern(ev.item_id)
        if ev.category is not None:
            ev.category = intern(ev.category)
    elif isinstance(ev, OrderEvent):
        for item in ev.items:
            item.item_id = intern(item.item_id)
            if item.category is not None:
                item.category = intern(item.category)
    return ev
