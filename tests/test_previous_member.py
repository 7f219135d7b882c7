"""A restarted worker removes its previous life from the group (streams/previous_member.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streams.previous_member import MEMBER_FILE, leave_previous, remember


def test_nothing_remembered_is_nothing_to_do(tmp_path: Path) -> None:
    kwargs = {"bootstrap_servers": ["127.0.0.1:1"]}  # never contacted
    assert asyncio.run(leave_previous(kwargs, "g", tmp_path)) is None


@pytest.mark.integration
def test_a_remembered_member_is_sent_away_once_and_never_raises(
    broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from aiokafka import AIOKafkaConsumer

    async def scenario() -> tuple[str | None, str | None, str]:
        kwargs = {"bootstrap_servers": [broker.bootstrap]}
        member = AIOKafkaConsumer(
            "previous-member-topic", group_id="previous-member-group",
            session_timeout_ms=6000, heartbeat_interval_ms=1000, rebalance_timeout_ms=6000,
            **kwargs,
        )  # fmt: skip
        await member.start()
        try:
            await member.getmany(timeout_ms=100)
            remember(tmp_path, member._coordinator.member_id)  # what the worker writes
            left = await leave_previous(kwargs, "previous-member-group", tmp_path)
            again = await leave_previous(kwargs, "previous-member-group", tmp_path)
            return left, again, member._coordinator.member_id
        finally:
            await member.stop()

    with caplog.at_level("INFO", logger="streams.previous_member"):
        left, again, member_id = asyncio.run(scenario())
    assert left == member_id and again is None
    assert not (tmp_path / MEMBER_FILE).exists()
    assert f"previous member {member_id} of group previous-member-group left" in caplog.text
