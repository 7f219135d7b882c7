"""`ecom-stream erase USER`: ask the workers to forget a user (issue 21).

The request goes to the `erasure-requests` topic keyed like the user's events. With
`ECOM_PSEUDONYMIZE=1` the id is pseudonymised here, under every accepted key, so the
raw id never reaches the broker; the worker holding the user removes it from every copy
and answers on `erasure-confirmations` (docs/operations.md "Personal data")."""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

from ecom_cli.kafka_commands import check_broker
from online_models.erasure import ErasureRequest
from online_models.outputs import encode_output
from streams.settings import Settings


def requests(settings: Settings, user: str, request_id: str, ts: int) -> list[ErasureRequest]:
    """One request per pseudonym of `user` (one per accepted key), or the id itself."""
    return [
        ErasureRequest(request_id=request_id, user_id=u, ts=ts)
        for u in settings.privacy().every_pseudonym(user)
    ]


async def send(settings: Settings, reqs: list[ErasureRequest]) -> None:
    from aiokafka import AIOKafkaProducer

    from streams.app import kafka_client_kwargs

    producer = AIOKafkaProducer(**kafka_client_kwargs(settings), acks="all")
    await producer.start()
    try:
        for req in reqs:
            await producer.send_and_wait(
                settings.topic_erasure_requests, encode_output(req), key=req.user_id.encode()
            )
    finally:
        await producer.stop()


def _erase(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    check_broker(settings)
    request_id = args.request_id or uuid.uuid4().hex
    reqs = requests(settings, args.user, request_id, args.ts or int(time.time() * 1000))
    asyncio.run(send(settings, reqs))
    # Pseudonyms only: the raw id is not printed (a terminal log is a copy too).
    print(f"erasure request {request_id} sent for {', '.join(r.user_id for r in reqs)}")
    return 0


def add_erase_parser(sub: Any) -> None:
    ep = sub.add_parser(
        "erase",
        help="erase a user from every copy the service keeps",
        description="Send an erasure request for USER to the erasure-requests topic; the "
        "worker owning the user removes the profile (a changelog tombstone), its sessions "
        "and pending attributions, and confirms on erasure-confirmations. With "
        "ECOM_PSEUDONYMIZE=1 USER is pseudonymised before it is sent.",
    )
    ep.add_argument("user", metavar="USER", help="the user id as the producers send it")
    ep.add_argument("--request-id", default=None, help="the request's id (default: random)")
    ep.add_argument(
        "--ts", type=int, default=None, help="event time of the request, epoch ms (default: now)"
    )
    ep.set_defaults(func=_erase)
