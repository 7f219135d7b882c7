"""Pseudonymous ids and personal fields, applied once at decode (issue 21).

With `ECOM_PSEUDONYMIZE=1` every identifier field marked personal (`PERSONAL_IDS`) is
replaced by a keyed hash, HMAC-SHA-256 under the secret `ECOM_PSEUDONYM_KEY`, written
`<key id>.<32 hex digits>` so that every output names the key its ids were made with.
Personal fields (`PERSONAL_FIELDS`, e.g. an email in an impression's context) are
dropped. Nothing downstream of decode (state, changelog, snapshots, outputs, logs) ever
sees the raw value.

A key spec lists keys as `id:hexkey`, comma separated; the first makes new pseudonyms,
the others are still *accepted*: an id that already is a pseudonym under any listed
key (an event the worker re-sent to its user's partition, an upstream producer that
pseudonymises itself) passes unchanged, and an erasure names the user under every
listed key. See docs/operations.md "Personal data" for rotation.

>>> p = Pseudonymizer.from_spec("k1:" + "11" * 32)
>>> u = p.pseudonym("alice")
>>> u.startswith("k1.") and len(u) == 35 and p.pseudonym("alice") == u
True
>>> p.pseudonym(u) == u, p.key_id_of(u), p.key_id_of("alice")
(True, 'k1', None)
>>> Pseudonymizer.from_spec("k1:abcd")
Traceback (most recent call last):
...
ValueError: key 'k1' has 2 bytes; HMAC-SHA-256 keys need at least 32
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from online_models.bounds import ConfigError
from online_models.decode import DEFAULT_MAX_DEPTH, nesting_depth
from online_models.events import AdImpression

# Identifier fields of the input schemas that name a person (replaced by pseudonyms).
# A session id is the user's for as long as the session lasts, and may embed a login.
PERSONAL_IDS: Final = ("user_id", "session_id")
# Fields that describe a person directly: never kept, at any level of a record.
PERSONAL_FIELDS: Final = frozenset(
    {"email", "phone", "ip", "ip_address", "address", "name", "first_name", "last_name"}
)
_PERSONAL_NAMES: Final = tuple(f'"{name}"'.encode() for name in sorted(PERSONAL_FIELDS))
MIN_KEY_BYTES: Final = 32
_HEX_DIGITS: Final = 32  # 128 bits of the HMAC: collisions need ~2**64 users
_SHAPE: Final = re.compile(r"^([A-Za-z0-9_-]{1,16})\.([0-9a-f]{32})$")


class Pseudonymizer:
    """Keyed pseudonyms; `keys` maps key id -> key bytes, `current` makes new ones.

    Parameters
    ----------
    keys
        Every accepted key by its id (during a rotation: the new and the old one).
    current
        The id of the key new pseudonyms are made with.
    """

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise ValueError(f"current key {current!r} is not among the keys")
        for kid, key in keys.items():
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,16}", kid):
                raise ValueError(f"key id {kid!r}: 1-16 letters, digits, '_' or '-'")
            if len(key) < MIN_KEY_BYTES:
                raise ValueError(
                    f"key {kid!r} has {len(key)} bytes; HMAC-SHA-256 keys need at least "
                    f"{MIN_KEY_BYTES}"
                )
        self.keys = dict(keys)
        self.current = current
        self._cache: dict[str, str] = {}

    @classmethod
    def from_spec(cls, spec: str) -> Pseudonymizer:
        """`id:hexkey[,id:hexkey...]`, the first the current key. The error never
        repeats a key."""
        keys: dict[str, bytes] = {}
        for n, part in enumerate(p.strip() for p in spec.split(",") if p.strip()):
            kid, sep, hexkey = part.partition(":")
            if not sep:
                raise ValueError(f"key {n + 1}: expected id:hexkey")
            try:
                keys[kid] = bytes.fromhex(hexkey)
            except ValueError:
                raise ValueError(f"key {kid!r}: not hexadecimal") from None
        if not keys:
            raise ValueError("no key given")
        return cls(keys, next(iter(keys)))

    def key_id_of(self, value: str) -> str | None:
        """The key id of a pseudonym under an accepted key, else None (a raw id)."""
        m = _SHAPE.match(value)
        return m.group(1) if m is not None and m.group(1) in self.keys else None

    def pseudonym(self, value: str, key_id: str | None = None) -> str:
        """The pseudonym of a raw id under `key_id` (default: the current key); an
        accepted pseudonym comes back unchanged."""
        if key_id is None:
            cached = self._cache.get(value)
            if cached is not None:
                return cached
            if self.key_id_of(value) is not None:
                return value
        kid = key_id or self.current
        digest = hmac.new(self.keys[kid], value.encode(), hashlib.sha256).hexdigest()
        out = f"{kid}.{digest[:_HEX_DIGITS]}"
        if key_id is None:
            if len(self._cache) > 100_000:  # bounded: a cache, not a lookup table
                self._cache.clear()
            self._cache[value] = out
        return out

    def every_pseudonym(self, value: str) -> list[str]:
        """The user under every accepted key (erasure during a rotation)."""
        if self.key_id_of(value) is not None:
            return [value]
        return [self.pseudonym(value, kid) for kid in self.keys]


class Privacy:
    """What decode applies to every event and every dead letter.

    Parameters
    ----------
    pseudonyms
        None: ids stay as the producer sent them (`ECOM_PSEUDONYMIZE=0`).
    dead_letters
        "redact": a refused record keeps its bytes with personal ids pseudonymised and
        personal fields removed (a record that is not a JSON object keeps none);
        "drop": only where it came from and why, no payload.

    >>> pv = Privacy(Pseudonymizer.from_spec("k1:" + "22" * 32))
    >>> out, how = pv.dead_letter_payload(b'{"user_id":"bob","email":"b@x.org","ts":1}')
    >>> how, b"bob" in out, b"email" in out
    ('redacted', False, False)
    >>> pv.dead_letter_payload(b"\\x80\\x04junk")
    (b'', 'withheld')
    """

    def __init__(self, pseudonyms: Pseudonymizer | None = None, dead_letters: str = "redact"):
        if dead_letters not in ("redact", "drop"):
            raise ValueError(f"dead-letter privacy {dead_letters!r}: redact or drop")
        self.pseudonyms = pseudonyms
        self.dead_letters = dead_letters

    @property
    def key_id(self) -> str | None:
        return self.pseudonyms.current if self.pseudonyms is not None else None

    def event(self, ev: Any) -> Any:
        """The decoded event with personal ids pseudonymised and personal fields gone."""
        if isinstance(ev, AdImpression) and ev.context:
            for name in PERSONAL_FIELDS.intersection(ev.context):
                del ev.context[name]
        if self.pseudonyms is not None:
            if hasattr(ev, "user_id"):
                ev.user_id = self.pseudonyms.pseudonym(ev.user_id)
            if getattr(ev, "session_id", None) is not None:
                ev.session_id = self.pseudonyms.pseudonym(ev.session_id)
        return ev

    def every_pseudonym(self, user: str) -> list[str]:
        """The user under every accepted key; [user] itself without pseudonyms."""
        return self.pseudonyms.every_pseudonym(user) if self.pseudonyms is not None else [user]

    def user(self, user: str) -> str:
        return self.pseudonyms.pseudonym(user) if self.pseudonyms is not None else user

    def key(self, key: bytes | None) -> bytes | None:
        """A refused record's key (the producer's user id) as it may be kept."""
        if key is None or self.pseudonyms is None:
            return key
        return self.pseudonyms.pseudonym(key.decode("utf-8", "replace")).encode()

    def dead_letter_payload(self, raw: bytes | None) -> tuple[bytes, str]:
        """(bytes to keep, how): "original" (nothing personal can be in it: no
        pseudonyms asked and no personal field), "redacted" or "withheld"."""
        raw = raw or b""
        if self.dead_letters == "drop" and raw:
            return b"", "withheld"
        if self.pseudonyms is None and not any(f in raw for f in _PERSONAL_NAMES):
            return raw, "original"  # nothing to remove: the bytes as received
        obj = None
        # Deeper than any schema: the redaction walk below is never asked to recurse far.
        if nesting_depth(raw) <= DEFAULT_MAX_DEPTH:
            with contextlib.suppress(orjson.JSONDecodeError):
                obj = orjson.loads(raw)
        if not isinstance(obj, dict):
            # Bytes that cannot be parsed may hold anything: none of them survive.
            return (raw, "original") if not raw else (b"", "withheld")
        cleaned = self._clean(obj)
        return orjson.dumps(cleaned), "redacted"

    def _clean(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._clean(v) for v in value]
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for name, v in value.items():
            if name in PERSONAL_FIELDS:
                continue
            if name in PERSONAL_IDS and self.pseudonyms is not None:
                out[name] = self.pseudonyms.pseudonym(str(v)) if v is not None else None
            else:
                out[name] = self._clean(v)
        return out


def privacy_from_env(env: Mapping[str, str]) -> Privacy:
    """The worker's and the replay's Privacy from `ECOM_PSEUDONYMIZE`,
    `ECOM_PSEUDONYM_KEY` and `ECOM_DEAD_LETTER_PRIVACY`; ValueError (never showing a
    key) when pseudonyms are asked for without a usable key."""
    mode = env.get("ECOM_DEAD_LETTER_PRIVACY", "redact") or "redact"
    if env.get("ECOM_PSEUDONYMIZE", "0") in ("", "0"):
        return Privacy(None, mode)
    spec = env.get("ECOM_PSEUDONYM_KEY", "")
    if not spec:
        raise ValueError("ECOM_PSEUDONYMIZE=1 needs ECOM_PSEUDONYM_KEY (id:hexkey)")
    return Privacy(Pseudonymizer.from_spec(spec), mode)


def replay_privacy(env: Mapping[str, str]) -> Privacy:
    """`privacy_from_env` for a command line: a bad key is a ConfigError (exit 2)."""
    try:
        return privacy_from_env(env)
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
