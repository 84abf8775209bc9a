"""What reaches Redis: names that are keyed hashes, contents sealed with AES-256-GCM.

A name is HMAC-SHA256 over the cache key (scope, player, permissions, policy
digest) under a key derived from the primary encryption key, so a player id can
be neither read from Redis nor confirmed by hashing guesses. A blob is
`1 | len(key id) | key id | 12-byte nonce | ciphertext+tag`, with the entry's name
as associated data, so a blob copied to another player's name fails to open.
Rotation: add the new key after the old one everywhere, then move it first (it
then encrypts; the old one still opens what it sealed), then remove the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION = 1
NONCE_BYTES = 12
NAME_KEY_LABEL = b"satchel shared-cache names v1"


class Keyring:
    """AES-256-GCM keys by id: the first seals, any opens. Never printed."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self._primary_id = keys[0][0].encode()
        self._ciphers = {key_id.encode(): AESGCM(key) for key_id, key in keys}
        self._name_key = hmac.new(keys[0][1], NAME_KEY_LABEL, hashlib.sha256).digest()

    def __repr__(self) -> str:
        ids = ", ".join(key_id.decode() for key_id in self._ciphers)
        return f"Keyring(ids=[{ids}])"

    def name(self, parts: Sequence[str]) -> str:
        """A stable, unguessable name for a cache key (JSON: no ambiguity between parts)."""
        message = json.dumps(list(parts), separators=(",", ":")).encode()
        return hmac.new(self._name_key, message, hashlib.sha256).hexdigest()

    def seal(self, name: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._primary_id].encrypt(nonce, plaintext, name.encode())
        key_id = self._primary_id
        return bytes([FORMAT_VERSION, len(key_id)]) + key_id + nonce + sealed

    def open(self, name: str, blob: bytes) -> bytes | None:
        """The plaintext, or None for a blob this keyring cannot (or must not) open."""
        if len(blob) < 2 or blob[0] != FORMAT_VERSION:
            return None
        id_end = 2 + blob[1]
        cipher = self._ciphers.get(blob[2:id_end])
        if cipher is None:
            return None  # sealed with a key this replica does not hold (mid-rotation)
        nonce, sealed = blob[id_end : id_end + NONCE_BYTES], blob[id_end + NONCE_BYTES :]
        try:
            return cipher.decrypt(nonce, sealed, name.encode())
        except (InvalidTag, ValueError):
            return None
