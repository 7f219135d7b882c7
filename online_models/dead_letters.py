"""Dead letters: a refused input record, its original bytes, where it came from and why.

Part of the domain because the pipeline step emits them like any other output, the
same for the live worker and the replay."""

from __future__ import annotations

import base64

from online_models.outputs import DeadLetter, encode_output
from online_models.pseudonyms import Privacy


def dead_letter(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    raw: bytes | None,
    reason: str,
    error: str,
    privacy: Privacy | None = None,
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Dead-letter value and headers for a refused input: the original bytes survive
    exactly (a null value as an empty payload), with where they came from and why -
    unless they hold personal data: then `privacy` keeps them redacted or withholds
    them (`payload_privacy` says which; online_models/pseudonyms.py)."""
    privacy = privacy or _PLAIN
    raw, kept = privacy.dead_letter_payload(raw)
    try:
        payload, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(raw).decode(), "base64"
    record = DeadLetter(
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        reason=reason,
        error=error[:500],
        payload=payload,
        payload_encoding=encoding,
        key=key.decode("utf-8", "replace") if key is not None else None,
        payload_privacy=kept,
        key_id=privacy.key_id,
    )
    headers = [
        ("reason", reason.encode()),
        ("source_topic", topic.encode()),
        ("source_partition", str(partition).encode()),
        ("source_offset", str(offset).encode()),
    ]
    return encode_output(record), headers


_PLAIN = Privacy()
