"""Run events through one engine per partition, offline, exactly as live workers do:
each user goes to partition murmur2(user_id) % partitions, as Kafka's partitioner
puts their records. Used by the backtest replay and by tests as the reference.

>>> from online_models.events import ClickEvent
>>> r = Runner(EngineConfig(partitions=2))
>>> _ = r.feed("clickstream", ClickEvent(event_id="e", ts=1_700_000_000_000, user_id="u",
...                                      type="view", item_id="i"))
>>> r.profile("u").totals
{'view': 1}
"""

from __future__ import annotations

from online_models.config import EngineConfig
from online_models.engine import PartitionEngine, Result
from online_models.events import Campaign, InputEvent
from online_models.partitioning import partition_for
from online_models.profile import Profile
from online_models.state import UserState


class Runner:
    def __init__(self, cfg: EngineConfig) -> None:
        self.cfg = cfg
        self.campaigns: dict[str, Campaign] = {}
        self.engines = [PartitionEngine(cfg, p, self.campaigns) for p in range(cfg.partitions)]
        self.states: list[dict[str, UserState]] = [{} for _ in range(cfg.partitions)]
        self._partition_of: dict[str, int] = {}

    def partition(self, user_id: str) -> int:
        p = self._partition_of.get(user_id)
        if p is None:
            p = self._partition_of[user_id] = partition_for(user_id.encode(), self.cfg.partitions)
        return p

    def set_campaign(self, campaign: Campaign) -> None:
        self.campaigns[campaign.campaign_id] = campaign

    def feed(self, source: str, ev: InputEvent) -> Result:
        p = self.partition(ev.user_id)
        states = self.states[p]
        result = self.engines[p].process(source, ev, states.get(ev.user_id))
        states[ev.user_id] = result.state
        for user in result.expired:
            states.pop(user, None)
            self._partition_of.pop(user, None)
        return result

    def profile(self, user_id: str) -> Profile:
        return self.states[self.partition(user_id)][user_id].profile

    def active_users(self) -> int:
        return sum(len(s) for s in self.states)
