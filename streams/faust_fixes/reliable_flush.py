"""A producer-buffer flush that really drains before Faust commits offsets.

Written for faust-streaming 0.15.3 (`faust.transport.producer.ProducerBuffer`); no
upstream issue found (faust-streaming/faust#273 added the flush before each commit that
this makes reliable). Faust flushes its producer before committing consumer offsets,
which is what makes table changelogs at-least-once. But faust-streaming's
`ProducerBuffer.flush()` returns as soon as one 0.1 s wait passes without a send, even
with messages still buffered: with a slow broker, offsets can be committed for events
whose changelog writes were never handed to the Kafka client, and a crash then loses
them.

This flush counts what the buffer's drain task has published and waits until every
message enqueued before the flush began (including one being published) is out; newer
messages do not delay it, so commits keep flowing under sustained load. It wraps the
private `ProducerBuffer._send_pending(fut)` to count what went out and replaces
`flush()` on this app's buffer (the instance).
"""

from __future__ import annotations

import asyncio
from typing import Any

FLUSH_TIMEOUT_S = 60.0
POLL_S = 0.005


def install(app: Any) -> None:
    """Patch the app's producer buffer; call before the producer starts."""
    buffer = app.producer.buffer
    publish = buffer._send_pending
    progress = {"sent": 0, "busy": 0}

    async def send_pending(fut: Any) -> None:
        progress["busy"] = 1
        try:
            await publish(fut)
        finally:
            progress["busy"] = 0
            progress["sent"] += 1

    async def flush() -> None:
        target = progress["sent"] + buffer.size + progress["busy"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FLUSH_TIMEOUT_S
        while progress["sent"] < target:
            if loop.time() > deadline:
                raise TimeoutError("producer buffer did not drain; not committing offsets")
            await asyncio.sleep(POLL_S)

    # The drain task binds `_send_pending` when it starts, after this runs.
    buffer._send_pending = send_pending
    buffer.flush = flush
