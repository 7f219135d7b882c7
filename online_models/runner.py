"""Run events through one engine per partition, offline, exactly as live workers do:
each user goes to partition murmur2(user_id) % partitions, as Kafka's partitioner
puts their records. Used by the backtest replay and by tests as the reference.

Every engine reads and feeds ONE shared knowledge (`shared=False` gives each partition
its own, as before the knowledge was shared: for comparisons). Updates become visible
`cfg.knowledge_delay_ms` of event time after they happen; the clock is the latest
event time fed, which in a time-ordered replay is every partition's clock.

>>> from online_models.events import ClickEvent
>>> r = Runner(EngineConfig(partitions=2))
>>> _ = r.feed("clickstream", ClickEvent(event_id="e", ts=1_700_000_000_000, user_id="u",
...                                      type="view", item_id="i"))
>>> r.profile("u").totals, r.knowledge.trending_items(3)
({'view': 1}, ['i'])
"""

from __future__ import annotations

from online_models.config import EngineConfig
from online_models.decode import CAMPAIGNS
from online_models.engine import PartitionEngine
from online_models.erasure import ErasureRequest
from online_models.events import Campaign, InputEvent
from online_models.knowledge import SharedKnowledge
from online_models.partitioning import partition_for
from online_models.pipeline import DictStates, InputRecord, Limits, Pipeline, Step
from online_models.profile import Profile
from online_models.pseudonyms import Privacy


class Runner:
    """The offline driver: one engine and one dict of user states per partition, every
    event through the same `Pipeline.step` the live worker runs."""

    def __init__(
        self,
        cfg: EngineConfig,
        shared: bool = True,
        limits: Limits | None = None,
        privacy: Privacy | None = None,
    ) -> None:
        self.cfg = cfg
        self.campaigns: dict[str, Campaign] = {}
        self.knowledge = SharedKnowledge(cfg, self.campaigns)
        self.engines = [
            PartitionEngine(cfg, p, self.campaigns, self.knowledge if shared else None)
            for p in range(cfg.partitions)
        ]
        # Distinct knowledge objects: one when shared, one per partition otherwise.
        self.knowledges = list({id(e.knowledge): e.knowledge for e in self.engines}.values())
        self.states: list[DictStates] = [DictStates() for _ in range(cfg.partitions)]
        self._partition_of: dict[str, int] = {}
        self.pipeline = Pipeline(
            cfg,
            self.engines.__getitem__,
            self.states.__getitem__,
            lambda: self.knowledge,
            limits,
            home_of=self.partition,
            privacy=privacy,
        )

    def partition(self, user_id: str) -> int:
        p = self._partition_of.get(user_id)
        if p is None:
            p = self._partition_of[user_id] = partition_for(user_id.encode(), self.cfg.partitions)
        return p

    def set_campaign(self, campaign: Campaign) -> bool:
        """A campaigns-topic record; False when refused (`SharedKnowledge.set_campaign`).
        Isolated knowledges (`shared=False`) each take it."""
        return all([k.set_campaign(campaign) for k in self.knowledges])

    def feed(
        self, source: str, ev: InputEvent | Campaign | ErasureRequest, raw: bytes | None = None
    ) -> Step:
        """One decoded event (with its original bytes when known, for dead letters)
        through the pipeline step, keyed and partitioned as Kafka's producer would."""
        if isinstance(ev, Campaign):
            if len(self.knowledges) > 1:
                self.set_campaign(ev)
                return Step(event=ev, event_type="campaign")
            key = ev.campaign_id.encode()
            return self.pipeline.step(InputRecord(CAMPAIGNS, CAMPAIGNS, 0, None, key, raw), ev)
        user = ev.user_id
        p = self.partition(user)
        if len(self.knowledges) > 1:
            # Isolated knowledges still follow the replay's one clock.
            for k in self.knowledges:
                k.advance(ev.ts)
        step = self.pipeline.step(InputRecord(source, source, p, None, user.encode(), raw), ev)
        self.pipeline.apply(step)
        for gone in step.expired:
            self._partition_of.pop(gone, None)
        return step

    def profile(self, user_id: str) -> Profile:
        return self.states[self.partition(user_id)][user_id].profile

    def active_users(self) -> int:
        return sum(len(s) for s in self.states)
