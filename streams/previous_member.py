"""A restarted worker takes its previous incarnation out of the group before joining.

A worker that dies without leaving (SIGKILL, out of memory) stays a member of the
group until its session times out. Its restart joins as a new member, so the group
rebalances twice: for the join, which waits for the dead member in vain, and again
when that member expires; every partition stops in each (eager protocol; measured on
the embedded broker: 6-10 s a rebalance, docs/benchmarks.md "Crashes"). So the worker
writes its member id to its data dir at each assignment and, when it starts, sends the
LeaveGroup the dead process never sent: the group then rebalances once.

Only for dynamic membership: with ECOM_GROUP_INSTANCE_ID the broker replaces the member
itself. One data dir belongs to one worker (a StatefulSet pod's volume), so the id in
it can only name this worker's earlier life.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.group import LeaveGroupRequest

log = logging.getLogger(__name__)
MEMBER_FILE = "group-member-id"


def remember(data_dir: str | Path, member_id: str) -> None:
    """Write the current member id (atomically: a crash mid-write leaves the old one)."""
    path = Path(data_dir) / MEMBER_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(member_id)
    os.replace(tmp, path)


async def leave_previous(
    client_kwargs: Mapping[str, Any], group_id: str, data_dir: str | Path
) -> str | None:
    """Send LeaveGroup for the member id a previous life of this worker left in
    `data_dir`; returns that id (None: nothing to do). Never raises: at worst the
    group rebalances twice, as it would without this."""
    path = Path(data_dir) / MEMBER_FILE
    try:
        member = path.read_text().strip()
    except OSError:
        return None
    if not member:
        return None
    client = AIOKafkaClient(**client_kwargs)
    try:
        await client.bootstrap()
        node = await client.coordinator_lookup(CoordinationType.GROUP, group_id)
        response = await client.send(node, LeaveGroupRequest(group_id, member))
        error = for_code(response.error_code)
        log.info("previous member %s of group %s left: %s", member, group_id, error.__name__)
    except (KafkaError, OSError) as exc:
        log.warning("previous member %s could not be removed: %r", member, exc)
    finally:
        await client.close()
        path.unlink(missing_ok=True)
    return member
