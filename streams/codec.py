"""Wire formats of the shell: user state in the table changelog, outputs, dead letters.

The table codec is registered with Faust so the in-memory store keeps decoded
UserState objects and only the changelog carries bytes (msgspec JSON, never pickle).
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import orjson
from faust.serializers import codecs

from online_models.outputs import DeadLetter
from online_models.state import UserState, decode_state, encode_state

STATE_CODEC = "ecom_user_state"


class UserStateCodec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return encode_state(obj)

    def _loads(self, s: bytes) -> Any:
        return decode_state(s)


codecs.register(STATE_CODEC, UserStateCodec())


def encode_output(obj: msgspec.Struct) -> bytes:
    return orjson.dumps(msgspec.to_builtins(obj))


def dead_letter(topic: str, partition: int, offset: int, key: bytes | None, raw: bytes,
                reason: str, error: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Dead-letter value and headers: the original bytes survive exactly."""
    try:
        payload, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(raw).decode(), "base64"
    record = DeadLetter(
        source_topic=topic, source_partition=partition, source_offset=offset, reason=reason,
        error=error[:500], payload=payload, payload_encoding=encoding,
        key=key.decode("utf-8", "replace") if key is not None else None)
    headers = [("reason", reason.encode()), ("source_topic", topic.encode()),
               ("source_partition", str(partition).encode()),
               ("source_offset", str(offset).encode())]
    return encode_output(record), headers
