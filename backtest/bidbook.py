"""What a bidder subscribed to `bid-adjustments` would hold at any moment."""

from __future__ import annotations

from online_models.outputs import BidAdjustment


class BidBook:
    """What a bidder would hold from the bid-adjustment stream: the latest value part
    of each (user, campaign) multiplier and the latest pacing factor of each campaign
    (campaign-wide, whichever partition announced it), each in force for its ttl. The
    effective multiplier re-paces the user's value with the newest pacing factor, so a
    pacing update reaches users whose own adjustment is older.

    >>> from online_models.outputs import BidAdjustment
    >>> def adj(ts, user, mult, pace):
    ...     return BidAdjustment(event_id="e", ts=ts, user_id=user, campaign_id="c",
    ...         multiplier=mult, p_click=None, p_conversion=None, expected_revenue=None,
    ...         expected_roas=None, pacing_factor=pace, reason="new", ttl_s=60,
    ...         model_version="m", source_event_id="s", shard=0, shards=1)
    >>> book = BidBook()
    >>> book.record(adj(0, "u", 1.5, 1.0)); book.record(adj(10, None, 0.5, 0.5))
    >>> book.multiplier("u", "c", 20), book.multiplier("v", "c", 20)
    (0.75, 0.5)
    >>> book.multiplier("u", "c", 70_001)   # both expired: neutral
    1.0
    """

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], tuple[int, float]] = {}
        self.pacing: dict[str, tuple[int, float]] = {}

    def record(self, adj: BidAdjustment) -> None:
        until = adj.ts + adj.ttl_s * 1000
        if adj.user_id is not None:
            value = adj.multiplier / adj.pacing_factor if adj.pacing_factor > 0 else 1.0
            self.values[(adj.user_id, adj.campaign_id)] = (until, value)
        self.pacing[adj.campaign_id] = (until, adj.pacing_factor)

    def multiplier(self, user_id: str, campaign_id: str, ts: int) -> float:
        value = self.values.get((user_id, campaign_id))
        pace = self.pacing.get(campaign_id)
        v = value[1] if value is not None and ts <= value[0] else 1.0
        f = pace[1] if pace is not None and ts <= pace[0] else 1.0
        return round(v * f, 6)
