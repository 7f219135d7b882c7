"""The one pipeline step: an input record in, what to send and what changed out.

Both drivers run it: the live worker (`streams/runtime.py`, a record from Kafka) and
the offline replay (`online_models.runner.Runner`, a line of a file). A record goes

    decode -> route -> state get -> PartitionEngine.process -> emissions -> state put/evict

and comes back as a `Step`: the emissions to send (outputs and dead letters alike,
each with its own logical topic, key and headers), the state changes, and what the
shell reports (metrics). State is read through `UserStates` (the worker's table, a
dict offline) and written by `apply`, which the driver calls once the emissions are
handed to its producer: a crash between the two then redelivers the record to a state
that does not list it, and its outputs come again with the same ids (the other order
could lose them: a state that says "applied" and outputs never sent).

Nothing here raises for a bad record: a record that cannot be decoded or processed
becomes a dead-letter emission, so no record can stop its partition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from online_models.config import EngineConfig
from online_models.consent import declined, serve_without_consent
from online_models.dead_letters import dead_letter
from online_models.decode import (
    CAMPAIGNS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    DecodeError,
    decode_input,
)
from online_models.engine import REFUSALS, PartitionEngine
from online_models.erasure import ERASURE, ErasureRequest, decode_request, erase
from online_models.knowledge import SharedKnowledge
from online_models.outputs import Output, encode_output
from online_models.partitioning import partition_for
from online_models.pseudonyms import Privacy
from online_models.state import UserState

# Logical topics of emissions; the shell maps them to configured topic names.
DEAD_LETTER = "dead-letter"
REPARTITION = "repartition"  # back to the input topic, keyed and partitioned by user
# A repartitioned copy names the record it copies, "<partition>:<offset>": a crash
# between sending the copy and committing the original sends the copy again (at a new
# offset), and the user's state must still apply it once.
COPY_OF_HEADER = "ecom-copy-of"


def copy_of(headers: Any) -> tuple[int, int] | None:
    """The (partition, offset) a repartitioned record copies, from its Kafka headers (a
    list of pairs or a mapping); None for an original or an unreadable header.

    >>> copy_of([("ecom-copy-of", b"3:1207")])
    (3, 1207)
    >>> copy_of({"other": b"x"}) is None, copy_of([("ecom-copy-of", b"3:x")]) is None
    (True, True)
    """
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, value in pairs:
        if name == COPY_OF_HEADER and value:
            partition, _, offset = bytes(value).partition(b":")
            if partition.isdigit() and offset.isdigit():
                return int(partition), int(offset)
    return None


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One input record: where it sits (topic, partition, offset) and its bytes.
    `offset` None (a replay of a file) applies the event without recording it for
    redelivery checks."""

    topic: str  # the configured topic name (named in dead letters)
    stream: str  # the logical stream it carries (online_models.decode)
    partition: int
    offset: int | None
    key: bytes | None
    value: bytes | None  # None: a tombstone
    copy_of: tuple[int, int] | None = None  # a repartitioned copy: the original's place


class Emission(NamedTuple):
    """One record to send: a logical topic, its key, value and headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    partition: int | None = None


@dataclass(slots=True)
class Step:
    """What one record did. `reason` names why it was refused (a dead letter);
    `outputs` are the typed outputs behind the output emissions (for metrics and the
    replay's evaluation), `expired` the users forgotten by TTL."""

    emissions: list[Emission] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    user: str | None = None
    state: UserState | None = None
    expired: list[str] = field(default_factory=list)
    event: Any = None
    event_type: str = ""
    event_ts: int = 0
    labels: int = 0
    reason: str | None = None
    duplicate: bool = False
    repartitioned: bool = False
    partition: int = 0
    evict: str | None = None  # a user whose cached state must be dropped (a failure)


class UserStates(Protocol):
    """Where a partition's user states live (a Faust table live, a dict offline)."""

    def get(self, user: str) -> UserState | None: ...
    def __setitem__(self, user: str, state: UserState) -> None: ...
    def pop(self, user: str) -> Any: ...
    def forget(self, user: str) -> None: ...


class DictStates(dict[str, UserState]):
    """User states in a plain dict (the replay, tests)."""

    def pop(self, user: str, default: Any = None) -> Any:
        return super().pop(user, default)

    def forget(self, user: str) -> None:
        """Nothing cached apart from the dict itself: a state the engine may have
        changed before failing is dropped, the user starts again from nothing."""
        super().pop(user, None)


@dataclass(frozen=True)
class Limits:
    """Decode limits, the same for the worker and the replay (`ECOM_MAX_MESSAGE_BYTES`,
    `ECOM_MAX_NESTING_DEPTH`)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH


class Pipeline:
    """The step of every record of every partition of one process.

    Parameters
    ----------
    cfg
        The domain's hyperparameters (`partitions` routes users).
    engine_for
        The engine of a partition (the caller creates or restores it).
    states_for
        The user states of a partition.
    knowledge_of
        The process's shared knowledge (a getter: a restart may replace it); campaign
        records go there.
    limits
        Decode limits.
    home_of
        The partition of a user id (default: Kafka's partitioner over its bytes).
    privacy
        Pseudonyms and personal fields at decode, dead letters without personal data
        (online_models/pseudonyms.py); default: ids kept, personal fields dropped.
    """

    def __init__(
        self,
        cfg: EngineConfig,
        engine_for: Callable[[int], PartitionEngine],
        states_for: Callable[[int], UserStates],
        knowledge_of: Callable[[], SharedKnowledge],
        limits: Limits | None = None,
        home_of: Callable[[str], int] | None = None,
        privacy: Privacy | None = None,
    ) -> None:
        self.cfg = cfg
        self.engine_for = engine_for
        self.states_for = states_for
        self.knowledge_of = knowledge_of
        self.limits = limits or Limits()
        # The partition a user's state lives in (Kafka's murmur2 of the key, ~2.6 us):
        # a driver that already knows it (the offline Runner caches it per user)
        # passes its own instead of having it computed twice per event.
        self.home_of = home_of or self._home
        self.privacy = privacy or Privacy()

    def step(self, rec: InputRecord, event: Any = None) -> Step:
        """Apply one record. `event`: the record already decoded (the replay decodes to
        merge its files by event time), else it is decoded here."""
        if rec.stream == CAMPAIGNS:
            return self._campaign(rec, event)
        if rec.stream == ERASURE:
            return self._erasure(rec, event)
        try:
            ev = self.privacy.event(event if event is not None else self._decode(rec))
        except DecodeError as exc:
            return self._refused(rec, exc.reason, f"DecodeError: {exc.detail}")
        except Exception as exc:  # a parser bug must not become a crash loop
            return self._refused(rec, f"processing_error:{type(exc).__name__}", _describe(exc))
        user = ev.user_id
        user_key = user.encode()
        home = self.home_of(user)
        if rec.key != user_key or home != rec.partition:
            # Keyed differently by the producer: send it to where the user's state lives.
            # Pseudonymised, the producer's bytes (raw ids) are never sent again.
            raw = (rec.value or b"") if self.privacy.pseudonyms is None else encode_output(ev)
            place = rec.copy_of or (None if rec.offset is None else (rec.partition, rec.offset))
            headers = [] if place is None else [(COPY_OF_HEADER, b"%d:%d" % place)]
            return Step([Emission(REPARTITION, user_key, raw, headers, home)], repartitioned=True)
        if declined(ev):
            return self._declined(rec, ev)
        states = self.states_for(rec.partition)
        try:
            if rec.copy_of is None:
                result = self.engine_for(rec.partition).process(
                    rec.stream, ev, states.get(user), rec.offset
                )
            else:  # applied once per original record, however many copies come
                result = self.engine_for(rec.partition).process(
                    rec.stream, ev, states.get(user), rec.copy_of[1],
                    applied_as=f"{rec.stream}<{rec.copy_of[0]}",
                )  # fmt: skip
        except Exception as exc:
            # The engine may have changed the cached state before failing: it is
            # dropped (`apply`), and the store keeps the last state written.
            step = self._refused(rec, f"processing_error:{type(exc).__name__}", _describe(exc))
            step.evict = user
            return step
        kind = getattr(ev, "type", None) or getattr(ev, "status", None) or "impression"
        if result.refused is not None:
            why = REFUSALS.get(result.refused, result.refused)
            return self._refused(rec, result.refused, f"{why} (event time {ev.ts})")
        if result.duplicate:
            return Step(user=user, event=ev, event_type=kind, event_ts=ev.ts, duplicate=True)
        emissions = self._emissions(result.outputs)
        return Step(
            emissions,
            result.outputs,
            user,
            result.state,
            result.expired,
            ev,
            kind,
            ev.ts,
            result.labels,
            partition=rec.partition,
        )

    def peek(self, rec: InputRecord) -> tuple[Any, int | None]:
        """The record decoded and its event time, to order it before its step
        (`online_models.merge`); (None, None) for a record that cannot be decoded (its
        step decodes it again and refuses it) or has no event time (a campaign)."""
        if rec.stream == CAMPAIGNS:
            return None, None
        try:
            ev = self._decode(rec)
        except Exception:  # the step turns it into a dead letter
            return None, None
        return ev, ev.ts

    def _emissions(self, outputs: list[Output]) -> list[Emission]:
        if self.privacy.key_id is not None:
            for o in outputs:
                o.key_id = self.privacy.key_id
        return [
            Emission(
                o.TOPIC, o.routing_key(), encode_output(o), [("event_id", o.event_id.encode())]
            )
            for o in outputs
        ]

    def _declined(self, rec: InputRecord, ev: Any) -> Step:
        """An event whose user declined personalisation: served, nothing kept."""
        state = self.states_for(rec.partition).get(ev.user_id)
        engine = self.engine_for(rec.partition)
        outputs, erased = serve_without_consent(engine, rec.stream, ev, state)
        gone = [ev.user_id] if erased is not None else []
        kind = getattr(ev, "type", None) or getattr(ev, "status", None) or "impression"
        step = Step(self._emissions(outputs), outputs, expired=gone, event=ev, event_type=kind)
        step.event_ts, step.partition = ev.ts, rec.partition
        return step

    def apply(self, step: Step) -> None:
        """Write the step's state changes: the user's new state, users expired, a
        cached state dropped after a failure."""
        states = self.states_for(step.partition)
        if step.evict is not None:
            states.forget(step.evict)
        if step.state is not None and step.user is not None and not step.duplicate:
            states[step.user] = step.state
        for gone in step.expired:
            states.pop(gone)

    def _home(self, user: str) -> int:
        return partition_for(user.encode(), self.cfg.partitions)

    def _decode(self, rec: InputRecord) -> Any:
        return decode_input(rec.stream, rec.value, self.limits.max_bytes, self.limits.max_depth)

    def _campaign(self, rec: InputRecord, event: Any) -> Step:
        """A campaigns-topic record: settings for every partition's engine."""
        knowledge = self.knowledge_of()
        if rec.value is None and event is None:  # a tombstone: the campaign is deleted
            knowledge.remove_campaign((rec.key or b"").decode(errors="replace"))
            return Step(event_type="campaign_deleted")
        try:
            campaign = event if event is not None else self._decode(rec)
        except DecodeError as exc:
            return self._refused(rec, exc.reason, f"DecodeError: {exc.detail}", False)
        if not knowledge.set_campaign(campaign):
            why = "max_campaigns campaigns are known already"
            return self._refused(rec, "too_many_campaigns", why, False)
        return Step(event=campaign, event_type="campaign")

    def _erasure(self, rec: InputRecord, event: Any) -> Step:
        """An erasure request (online_models/erasure.py), routed like the user's events;
        during a key rotation it goes to the user's pseudonym under every key."""
        try:
            req = event if event is not None else decode_request(rec.value)
        except DecodeError as exc:
            return self._refused(rec, exc.reason, f"DecodeError: {exc.detail}")
        step = Step(event_type="erasure", event_ts=req.ts, partition=rec.partition)
        for user in self.privacy.every_pseudonym(req.user_id):
            home = self.home_of(user)
            if rec.key != user.encode() or home != rec.partition:
                moved = ErasureRequest(request_id=req.request_id, user_id=user, ts=req.ts)
                step.emissions.append(
                    Emission(REPARTITION, user.encode(), encode_output(moved), [], home)
                )
                step.repartitioned = True
                continue
            state = self.states_for(rec.partition).get(user)
            done = erase(self.engine_for(rec.partition), user, state, req)
            if self.privacy.pseudonyms is not None:
                done.key_id = self.privacy.pseudonyms.key_id_of(user)
            value = encode_output(done)
            step.emissions.append(
                Emission(
                    done.TOPIC, done.routing_key(), value, [("event_id", done.event_id.encode())]
                )
            )
            step.expired.append(user)  # `apply` deletes it: a tombstone in the changelog
        return step

    def _refused(self, rec: InputRecord, reason: str, error: str, by_user: bool = True) -> Step:
        """A dead letter; `by_user`: the record's key is a user id (not a campaign's)."""
        offset = rec.offset if rec.offset is not None else -1
        key = self.privacy.key(rec.key) if by_user else rec.key
        value, headers = dead_letter(
            rec.topic, rec.partition, offset, key, rec.value, reason, error, self.privacy
        )
        return Step([Emission(DEAD_LETTER, key, value, headers)], reason=reason)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
