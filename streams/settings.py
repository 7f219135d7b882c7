"""The one settings object, read from environment variables. Secrets never print."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from online_models.config import domain_overrides

SECRET_FIELDS = frozenset({"sasl_password", "ssl_key_password"})


class SettingsError(ValueError):
    """The environment describes a configuration that must not start."""


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Settings:
    """Every knob of the worker. `Settings.from_env()` is the only constructor used."""

    bootstrap_servers: str = "127.0.0.1:9092"
    app_id: str = "ecom-stream"
    profile: str = "dev"  # "prod" refuses to start without TLS/SASL
    partitions: int = 4
    replication_factor: int = 1
    topic_clickstream: str = "clickstream"
    topic_orders: str = "orders"
    topic_impressions: str = "ad-impressions"
    topic_campaigns: str = "campaigns"
    topic_recommendations: str = "recommendations"
    topic_bid_adjustments: str = "bid-adjustments"
    topic_dead_letter: str = "dead-letter"
    topic_snapshots: str = "model-snapshots"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    data_dir: str = ".run/worker-data"
    max_message_bytes: int = 64 * 1024
    # Decoded user states kept in memory (most recently used); the rest are decoded
    # from the table's bytes when needed. Bounds the worker's memory (streams/state_store.py).
    state_cache_users: int = 256
    max_nesting_depth: int = 32  # deeper JSON goes to dead-letter as too_deep, unparsed
    # Readiness fails while a partition with a backlog has not advanced for this long.
    stall_timeout_s: float = 120.0
    # Consumer lag (log end minus next offset to process) and broker reachability are
    # refreshed this often; the broker counts as unreachable after broker_timeout_s.
    lag_refresh_s: float = 5.0
    broker_timeout_s: float = 15.0
    # SIGTERM: flushing and committing may take this long before the worker exits anyway
    # (what was not committed is redelivered to the next owner, not lost).
    shutdown_timeout_s: float = 8.0
    snapshot_every_events: int = 2000
    snapshot_every_s: float = 10.0
    # A snapshot blocks its worker for a time that grows with the partition's state;
    # snapshots due (by count or age) wait until they cost at most this share of the time.
    snapshot_max_share: float = 0.05
    session_timeout_s: float = 60.0
    rebalance_timeout_s: float = 60.0
    heartbeat_interval_s: float = 3.0
    commit_interval_s: float = 2.8
    # Records per fetch: small fetches keep the three input topics of a partition close
    # in event time, so fewer events arrive behind the watermark (see architecture.md).
    max_poll_records: int = 200
    log_level: str = "info"
    # > 0: trace allocations and log their growth every this many seconds (diagnosis)
    debug_memory_s: float = 0.0
    # 1 on brokers whose ListOffsets(latest) is wrong (the embedded Tansu): see end_offsets.py
    fetch_end_offsets: int = 0
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_key_password: str = field(default="", repr=False)
    domain: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "domain":
                continue
            key = ENV_NAMES[f.name]
            if key in source:
                values[f.name] = _coerce(f.type, source[key], key)
        values["domain"] = domain_overrides(source)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if self.partitions < 1:
            raise SettingsError("ECOM_PARTITIONS must be >= 1")
        if self.state_cache_users < 1:
            raise SettingsError("ECOM_STATE_CACHE_USERS must be >= 1")
        if self.max_nesting_depth < 2:
            raise SettingsError("ECOM_MAX_NESTING_DEPTH must be >= 2")
        if self.lag_refresh_s <= 0 or self.broker_timeout_s <= 0:
            raise SettingsError("ECOM_LAG_REFRESH_S and ECOM_BROKER_TIMEOUT_S must be > 0")
        if not 0 < self.snapshot_max_share <= 1:
            raise SettingsError("ECOM_SNAPSHOT_MAX_SHARE must be in (0, 1]")
        if self.security_protocol.startswith("SASL") and not (
            self.sasl_mechanism and self.sasl_username and self.sasl_password
        ):
            raise SettingsError("SASL needs KAFKA_SASL_MECHANISM, _USERNAME and _PASSWORD")
        if self.profile == "prod" and self.security_protocol != "SASL_SSL":
            raise SettingsError(
                "ECOM_PROFILE=prod refuses to start without KAFKA_SECURITY_PROTOCOL=SASL_SSL"
            )

    def redacted(self) -> dict[str, Any]:
        """A loggable view: secrets replaced by '***' when set."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = ("***" if value else "") if f.name in SECRET_FIELDS else value
        return out

    def input_topics(self) -> dict[str, str]:
        """Configured topic name -> logical stream name used by the domain decoder."""
        return {
            self.topic_clickstream: "clickstream",
            self.topic_orders: "orders",
            self.topic_impressions: "ad-impressions",
        }


def _coerce(kind: Any, raw: str, key: str) -> Any:
    try:
        if kind in ("int", int):
            return int(raw)
        if kind in ("float", float):
            return float(raw)
    except ValueError:
        raise SettingsError(f"{key}={raw!r} is not a number") from None
    return raw


# Environment variable of each field; Kafka connection settings keep Kafka's usual names.
ENV_NAMES: dict[str, str] = {
    f.name: (
        f"KAFKA_{f.name.upper()}"
        if f.name in {"bootstrap_servers", "security_protocol"}
        or f.name.startswith(("sasl_", "ssl_"))
        else f"ECOM_{f.name.upper()}"
    )
    for f in fields(Settings)
}
