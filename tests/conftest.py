"""Shared fixtures: one embedded broker per test session and a fast worker environment."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# The suite must also run from a venv without the editable install of this project.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from streams.broker import EmbeddedBroker, free_port  # noqa: E402


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    # No try/except: a broker that cannot start fails every test that needs it.
    instance = EmbeddedBroker()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def fast_worker_env(broker: EmbeddedBroker, tmp_path: Path) -> dict[str, str]:
    """Worker env with short group timeouts so rebalances in tests take seconds."""
    data_dir = tmp_path / "worker-data"
    data_dir.mkdir()
    run = uuid.uuid4().hex[:8]
    # Tests share one broker: topic names of their own keep their records apart.
    topics = {f"ECOM_TOPIC_{name.upper().replace('-', '_')}": f"{name}-{run}" for name in (
        "clickstream", "orders", "impressions", "campaigns", "recommendations",
        "bid_adjustments", "dead_letter", "snapshots", "erasure_requests",
        "erasure_confirmations")}  # fmt: skip
    return {
        **topics,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "ECOM_WEB_PORT": str(free_port()),
        "ECOM_DATA_DIR": str(data_dir),
        "ECOM_SESSION_TIMEOUT_S": "6",
        "ECOM_REBALANCE_TIMEOUT_S": "6",
        "ECOM_HEARTBEAT_INTERVAL_S": "1",
        "ECOM_APP_ID": f"ecom-test-{run}",
        "ECOM_PARTITIONS": "2",
        # Tansu's ListOffsets(latest) is wrong; see streams/end_offsets.py.
        "ECOM_FETCH_END_OFFSETS": "1",
        "ECOM_COMMIT_INTERVAL_S": "0.5",
    }
