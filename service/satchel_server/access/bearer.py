"""Bearer keys: their format, their stored form, and a constant-time check.

A key is `sat_<keyid>_<secret>`: 16 hex digits of key id (public: it names the
entry in the configuration and may appear in the audit log) and 64 hex digits
(256 bits) of secret from `secrets`. The configuration stores only
`<keyid>:sha256:<hex>`, the SHA-256 of the whole key.

Why a fast hash is right here: slow password hashes (bcrypt, scrypt, Argon2)
exist because human passwords are guessable, so each guess must be made
expensive. A 256-bit random secret cannot be guessed at any speed, so a stolen
configuration yields nothing; and a fast hash costs microseconds per call where
a slow one would cost milliseconds on every RPC.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from satchel_server.errors import Unauthenticated

KEY_PREFIX = "sat_"
_KEY_ID_BYTES = 8
_SECRET_BYTES = 32
_KEY = re.compile(r"sat_([0-9a-f]{16})_[0-9a-f]{64}")


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly generated key: what the caller gets and what the configuration stores."""

    key_id: str
    key: str = field(repr=False)

    @property
    def config_entry(self) -> str:
        return f"{self.key_id}:sha256:{key_digest(self.key)}"


def generate_key() -> NewKey:
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    return NewKey(key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_hex(_SECRET_BYTES)}")


def key_id_of(key: str) -> str:
    """The public key id of a well-formed key; Unauthenticated when it is not one."""
    match = _KEY.fullmatch(key)
    if match is None:
        raise Unauthenticated("malformed bearer key")
    return match.group(1)


class KeyTable:
    """Stored digests by key id, each naming its caller."""

    def __init__(self, entries: dict[str, tuple[str, str]]) -> None:
        # key id -> (caller name, hex digest)
        self._entries = dict(entries)

    @classmethod
    def from_config(cls, keys_by_caller: dict[str, tuple[str, ...]]) -> KeyTable:
        entries: dict[str, tuple[str, str]] = {}
        for caller, stored in keys_by_caller.items():
            for entry in stored:
                key_id, _, digest = entry.split(":")
                entries[key_id] = (caller, digest)
        return cls(entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def caller_of(self, key: str) -> tuple[str, str]:
        """(caller name, key id) for a valid key; Unauthenticated otherwise."""
        key_id = key_id_of(key)
        caller, expected = self._entries.get(key_id, ("", ""))
        # compare_digest takes time independent of where the digests differ, so timing
        # reveals nothing about how close a guess came.
        if not hmac.compare_digest(key_digest(key), expected):
            reason = "key does not match" if caller else "unknown or retired key id"
            raise Unauthenticated(f"{reason} ({key_id})")
        return caller, key_id
