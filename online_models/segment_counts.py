"""k-anonymous segment labels (issue 21): a buyer segment's label is published or used
as a bid feature only while at least k users carry it; a smaller one falls back to the
coarser `buyer`, and `buyer` itself to `any` while fewer than k users have bought.

The population of a label is the number of users whose latest order put them in it:
each order moves its user from their previous label to the new one (a `BuyerRfm`
update, so every partition's users count in the one shared knowledge), an erasure moves
them out. A profile that expires by TTL is not moved out (its engine no longer sees the
profile), so counts can only overstate a population by users who left within the
profile TTL; they never understate it by a user who is still there.

>>> c = SegmentCounts()
>>> for n in range(3):
...     c.move("new", "s0")
>>> c.move("new", "s1")
>>> c.public("s0", 3), c.public("s1", 3), c.public("s1", 5), c.public("prospect", 5)
('s0', 'buyer', 'any', 'prospect')
>>> c.move("s0", "s1"); c.members
{'s0': 2, 's1': 2}
"""

from __future__ import annotations

from typing import Any

COARSE = "buyer"  # every buyer segment together
COARSEST = "any"


def is_buyer_segment(label: str) -> bool:
    """`s0`..`sN`: the labels the segment model gives buyers (others are coarse)."""
    return len(label) > 1 and label[0] == "s" and label[1:].isdigit()


class SegmentCounts:
    """Users per buyer segment label, and the label that may be shown for each."""

    def __init__(self) -> None:
        self.members: dict[str, int] = {}

    def move(self, old: str | None, new: str | None) -> None:
        """A user's label changed from `old` to `new` (None: not counted, or gone)."""
        if old == new:
            return
        if old is not None and is_buyer_segment(old) and self.members.get(old, 0) > 0:
            self.members[old] -= 1
            if not self.members[old]:
                del self.members[old]
        if new is not None and is_buyer_segment(new):
            self.members[new] = self.members.get(new, 0) + 1

    def public(self, label: str, k: int) -> str:
        """The label to publish or use for a user labelled `label`."""
        if not is_buyer_segment(label):
            return label
        if self.members.get(label, 0) >= k:
            return label
        return COARSE if sum(self.members.values()) >= k else COARSEST

    def to_state(self) -> dict[str, Any]:
        return {"members": dict(self.members)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SegmentCounts:
        c = cls()
        c.members = {str(k): int(v) for k, v in state["members"].items()}
        return c
