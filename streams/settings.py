"""The one settings object, read from environment variables. Secrets never print."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from online_models.bounds import (
    ConfigError,
    above,
    at_least,
    flag,
    one_of,
    parse,
    problems,
    text,
    within,
)
from online_models.config import DOMAIN_ENV_PREFIX, domain_overrides
from online_models.pseudonyms import Privacy, Pseudonymizer

SECRET_FIELDS = frozenset({"sasl_password", "ssl_key_password", "pseudonym_key"})
# What Faust's worker (mode) accepts as a log level, in the spelling users write.
LOG_LEVELS = ("crit", "critical", "error", "warn", "warning", "info", "debug")


class SettingsError(ConfigError):
    """The environment describes a configuration that must not start; `problems`
    holds one line per mistake, each naming its variable."""


@dataclass(frozen=True)
class Settings:
    """Every knob of the worker. `Settings.from_env()` is the only constructor used.

    Each field declares its type and accepted range (online_models/bounds.py), the same
    mechanism as the domain's EngineConfig, so both are checked in one pass."""

    bootstrap_servers: str = text("127.0.0.1:9092")
    app_id: str = text("ecom-stream")
    profile: str = one_of("dev", "dev", "prod")  # "prod" refuses to start without TLS/SASL
    partitions: int = at_least(4, 1)
    replication_factor: int = at_least(1, 1)
    topic_clickstream: str = text("clickstream")
    topic_orders: str = text("orders")
    topic_impressions: str = text("ad-impressions")
    topic_campaigns: str = text("campaigns")
    topic_recommendations: str = text("recommendations")
    topic_bid_adjustments: str = text("bid-adjustments")
    topic_dead_letter: str = text("dead-letter")
    topic_snapshots: str = text("model-snapshots")
    web_host: str = text("127.0.0.1")
    web_port: int = within(6066, 1, 65535)
    data_dir: str = text(".run/worker-data")
    # Where the users table lives: "memory://" (recovered from its changelog at every
    # start) or "rocksdb://" (on disk under data_dir: a restarted worker reads only the
    # changelog written since it stopped; needs the rocksdict package).
    table_store: str = one_of("memory://", "memory://", "rocksdb://")
    # Below a few hundred bytes no real event fits: 256 is the floor, not a target.
    max_message_bytes: int = at_least(64 * 1024, 256)
    # Decoded user states kept in memory (most recently used); the rest are decoded
    # from the table's bytes when needed. Bounds the worker's memory (streams/state_store.py).
    state_cache_users: int = at_least(256, 1)
    # deeper JSON goes to dead-letter as too_deep, unparsed
    max_nesting_depth: int = within(32, 2, 1000)
    # Readiness fails while a partition with a backlog has not advanced for this long.
    stall_timeout_s: float = above(120.0, 0)
    # Consumer lag (log end minus next offset to process) and broker reachability are
    # refreshed this often; the broker counts as unreachable after broker_timeout_s.
    lag_refresh_s: float = above(5.0, 0)
    broker_timeout_s: float = above(15.0, 0)
    # SIGTERM: flushing and committing may take this long before the worker exits anyway
    # (what was not committed is redelivered to the next owner, not lost).
    shutdown_timeout_s: float = above(8.0, 0)
    snapshot_every_events: int = at_least(2000, 1)
    snapshot_every_s: float = above(10.0, 0)
    # A snapshot blocks its worker for a time that grows with the partition's state;
    # snapshots due (by count or age) wait until they cost at most this share of the time.
    snapshot_max_share: float = within(0.05, 0, 1, low_open=True)
    session_timeout_s: float = above(60.0, 0)
    rebalance_timeout_s: float = above(60.0, 0)
    heartbeat_interval_s: float = above(3.0, 0)
    # Static group membership (KIP-345): a worker restarted under the same id within
    # session_timeout_s gets its partitions back with no rebalance of the group (the
    # other workers go on). One id per worker, stable across its restarts: the pod name
    # of a StatefulSet. Empty: dynamic membership (every restart rebalances the group).
    group_instance_id: str = text("", nonempty=False)
    commit_interval_s: float = above(2.8, 0)
    # Records per fetch: small fetches keep the three input topics of a partition close
    # in event time, so fewer events arrive behind the watermark (see architecture.md).
    max_poll_records: int = at_least(200, 1)
    # A partition's input topics are applied in event time (online_models/merge.py): a
    # topic that is behind (not caught up) holds the others at most this long. 0: no
    # merge, records are applied in the order they are read.
    input_idle_ms: int = within(200, 0, 60_000)
    # 1: a topic that has nothing more to read right now (its log end, as the latest
    # fetch reported it) holds nothing: lower latency, but a record produced to it just
    # before another topic's can still be applied after (a race of one fetch). 0: wait
    # for every empty topic (up to input_idle_ms): the replay's order exactly.
    input_skip_caught_up: int = flag(1)
    log_level: str = one_of("info", *LOG_LEVELS)
    # Freed heap pages go back to the OS this often (streams/heap_trim.py); 0: never.
    heap_trim_s: float = at_least(60.0, 0)
    # > 0: trace allocations and log their growth every this many seconds (diagnosis)
    debug_memory_s: float = at_least(0.0, 0)
    # 1 on brokers whose ListOffsets(latest) is wrong (the embedded Tansu): see end_offsets.py
    fetch_end_offsets: int = flag(0)
    security_protocol: str = one_of("PLAINTEXT", "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
    sasl_mechanism: str = one_of("", "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    sasl_username: str = text("", nonempty=False)
    sasl_password: str = text("", nonempty=False, secret=True)
    ssl_cafile: str = text("", nonempty=False)
    ssl_certfile: str = text("", nonempty=False)
    ssl_keyfile: str = text("", nonempty=False)
    ssl_key_password: str = text("", nonempty=False, secret=True)
    # Personal data (issue 21, docs/operations.md "Personal data"): 1 replaces user ids
    # at decode by HMAC-SHA-256 pseudonyms under ECOM_PSEUDONYM_KEY ("id:hexkey", more
    # comma separated during a rotation, the first current); dead letters are redacted
    # or keep no payload ("drop").
    pseudonymize: int = flag(0)
    pseudonym_key: str = text("", nonempty=False, secret=True)
    dead_letter_privacy: str = one_of("redact", "redact", "drop")
    topic_erasure_requests: str = text("erasure-requests")
    topic_erasure_confirmations: str = text("erasure-confirmations")
    domain: dict[str, Any] = field(default_factory=dict)  # ECOM_DOMAIN_*: EngineConfig's

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of `env` (default: the process environment), every variable
        checked before anything connects; SettingsError lists every problem, one a line."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        found = unknown_names(source)
        for name, key in ENV_NAMES.items():
            if key in source:
                try:
                    values[name] = parse(cls, name, source[key])
                except ValueError as exc:
                    found.append(f"{key}={source[key]!r}: {exc}")
        try:
            values["domain"] = domain_overrides(source)
        except ConfigError as exc:
            found += exc.problems
        if found:
            raise SettingsError(found)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Rules across fields (each field's own range is checked when it is read)."""
        found = problems(self, ENV_NAMES)
        if self.security_protocol.startswith("SASL") and not (
            self.sasl_mechanism and self.sasl_username and self.sasl_password
        ):
            found.append(
                f"KAFKA_SECURITY_PROTOCOL={self.security_protocol}: SASL needs "
                "KAFKA_SASL_MECHANISM, _USERNAME and _PASSWORD"
            )
        if self.profile == "prod" and self.security_protocol != "SASL_SSL":
            found.append(
                "ECOM_PROFILE=prod refuses to start without KAFKA_SECURITY_PROTOCOL=SASL_SSL"
            )
        if self.pseudonymize:
            try:
                Pseudonymizer.from_spec(self.pseudonym_key)
            except ValueError as exc:  # the message never repeats a key
                found.append(f"ECOM_PSEUDONYM_KEY: {exc}")
        if self.heartbeat_interval_s >= self.session_timeout_s:
            found.append(
                f"ECOM_HEARTBEAT_INTERVAL_S={self.heartbeat_interval_s:g}: must be below "
                f"ECOM_SESSION_TIMEOUT_S={self.session_timeout_s:g}"
            )
        if found:
            raise SettingsError(found)

    def redacted(self) -> dict[str, Any]:
        """A loggable view: secrets replaced by '***' when set."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = ("***" if value else "") if f.name in SECRET_FIELDS else value
        return out

    def privacy(self) -> Privacy:
        """Pseudonyms and dead-letter privacy as the domain applies them at decode."""
        keys = Pseudonymizer.from_spec(self.pseudonym_key) if self.pseudonymize else None
        return Privacy(keys, self.dead_letter_privacy)

    def input_topics(self) -> dict[str, str]:
        """Configured topic name -> logical stream name used by the domain decoder."""
        return {
            self.topic_clickstream: "clickstream",
            self.topic_orders: "orders",
            self.topic_impressions: "ad-impressions",
            self.topic_erasure_requests: "erasure-requests",
        }


# Environment variable of each field; Kafka connection settings keep Kafka's usual names.
ENV_NAMES: dict[str, str] = {
    f.name: (
        f"KAFKA_{f.name.upper()}"
        if f.name in {"bootstrap_servers", "security_protocol"}
        or f.name.startswith(("sasl_", "ssl_"))
        else f"ECOM_{f.name.upper()}"
    )
    for f in fields(Settings)
    if f.name != "domain"
}

# ECOM_ variables the project itself sets that are not settings of the worker; any
# other unknown ECOM_ name is a typo and refused (a silently ignored knob is worse).
OTHER_ECOM_VARIABLES: dict[str, str] = {
    "ECOM_IMAGE": "docker-compose.yml: the image tag of the stack",
    "ECOM_MARKER": "tests/test_harness.py: a marker passed to test subprocesses",
}


def unknown_names(env: Mapping[str, str]) -> list[str]:
    """One problem per `ECOM_*` name that is no setting (ECOM_DOMAIN_* are checked by
    the domain), with the closest known name when there is one."""
    known = set(ENV_NAMES.values())
    found = []
    for key in sorted(env):
        if not key.startswith("ECOM_") or key.startswith(DOMAIN_ENV_PREFIX):
            continue
        if key in known or key in OTHER_ECOM_VARIABLES:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        found.append(f"{key}: unknown setting{hint}; `ecom-stream settings` lists them")
    return found
