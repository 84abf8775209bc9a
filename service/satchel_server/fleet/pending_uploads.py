"""The fleet's pending uploads: one sealed entry per folder in Redis, changed by compare-and-set.

Every replica admits uploads to a folder against the same entries, so the quota's
overshoot bound holds for the fleet as for one replica. An update reads the folder's
blob, applies the admission rule (presigning.quota, defined there once) to what it
holds, and writes the result only if the blob is still the one it read (a Lua
compare-and-set, which returns the newer blob on a conflict, and the rule runs again
on that). Within a replica, updates to one folder take turns, so conflicts come only
from other replicas.

The Redis key is a keyed hash of (scope, player) and the blob is sealed with that
name as associated data (fleet.crypto): neither player ids nor object keys are
readable in Redis. Each entry's `lands_by` is in the blob, on the wall clock every
replica shares; the key itself expires a little after no listing can need any of
them (quota.kept_until), so Redis holds only folders with recent uploads.

When Redis does not answer, uploads to quota scopes are refused (UsageUnavailable,
retry after the link's next probe): local entries could not bound the fleet, and a
quota that cannot be checked is not waived.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from satchel_server.errors import UsageUnavailable
from satchel_server.fleet.crypto import Keyring
from satchel_server.fleet.link import PROBE_SECONDS, RedisLink, SharedUnavailable
from satchel_server.presigning.quota import (
    Clock,
    Decide,
    FolderName,
    Pending,
    PendingEntries,
    kept_until,
)

# Real time past when no listing can need a folder's entries (quota.kept_until) before
# Redis drops them: room for replicas' clocks to differ (the times in the blob decide).
EXPIRY_MARGIN_SECONDS = 60.0
# Compare-and-set attempts per update before giving up (each failure means another
# replica's update to the same folder went first).
MAX_ATTEMPTS = 16
RETRY_AFTER_CONTENTION_SECONDS = 0.1
NAME_LABEL = "pending uploads"

# KEYS[1]: the folder's entry. ARGV: the blob read ("" when absent), the new blob ("":
# delete), TTL ms. Returns {1, ""} when written, else {0, the current blob or ""}.
SWAP_SCRIPT = """
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then
    return {0, current}
end
if ARGV[2] == '' then
    redis.call('DEL', KEYS[1])
else
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return {1, ''}
"""


@dataclass(slots=True)
class _Turns:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0


class RedisPendingUploads:
    def __init__(
        self,
        link: RedisLink,
        keyring: Keyring,
        *,
        key_prefix: str,
        clock: Clock = time.time,
    ) -> None:
        self._link = link
        self._keyring = keyring
        self._prefix = key_prefix
        self._clock = clock
        self._swap = link.client.register_script(SWAP_SCRIPT)
        self._turns: dict[str, _Turns] = {}

    def now(self) -> float:
        return self._clock()

    async def update(self, folder: FolderName, decide: Decide) -> None:
        name = self._keyring.name([NAME_LABEL, *folder])
        redis_key = f"{self._prefix}pending:{name}"
        async with self._turn(name):
            try:
                found = await self._link.call(lambda r: r.get(redis_key))
                blob = found if isinstance(found, bytes) else b""
                for _ in range(MAX_ATTEMPTS):
                    entries = self._open(name, blob)
                    now = self._clock()
                    args = self._swap_args(name, blob, decide(now, entries), now)
                    written, current = await self._compare_and_set(redis_key, args)
                    if written:
                        return
                    blob = current
            except SharedUnavailable:
                raise UsageUnavailable(
                    "the fleet's pending uploads are kept in Redis, which does not answer; "
                    "a quota that cannot be checked is not waived",
                    PROBE_SECONDS,
                ) from None
        raise UsageUnavailable(
            "too many replicas are allowing uploads to this folder at once",
            RETRY_AFTER_CONTENTION_SECONDS,
        )

    async def _compare_and_set(self, redis_key: str, args: list[bytes | int]) -> tuple[bool, bytes]:
        """(written, the blob Redis holds instead when not)."""
        written, current = await self._link.call(
            lambda r: self._swap(keys=[redis_key], args=args, client=r)
        )
        return bool(int(written)), current

    def _swap_args(
        self, name: str, blob: bytes, entries: PendingEntries, now: float
    ) -> list[bytes | int]:
        if not entries:
            return [blob, b"", 0]  # nothing to keep
        life = kept_until(entries) - now + EXPIRY_MARGIN_SECONDS
        return [blob, self._keyring.seal(name, _encode(entries)), max(1, math.ceil(life * 1000))]

    def _open(self, name: str, blob: bytes) -> PendingEntries:
        if not blob:
            return {}
        plaintext = self._keyring.open(name, blob)
        if plaintext is None:
            # Not sealed by this fleet's keys: what it counted is unknown, so nothing is allowed.
            raise UsageUnavailable(
                "the fleet's pending uploads for this folder cannot be opened with this "
                "replica's cache keys; every replica needs the same SATCHEL_CACHE_KEYS",
                PROBE_SECONDS,
            )
        return _decode(plaintext)

    @contextlib.asynccontextmanager
    async def _turn(self, name: str) -> AsyncIterator[None]:
        """One update per folder at a time in this replica; forgotten when none waits."""
        turns = self._turns.setdefault(name, _Turns())
        turns.waiting += 1
        try:
            async with turns.lock:
                yield
        finally:
            turns.waiting -= 1
            if not turns.waiting:
                del self._turns[name]


def _encode(entries: PendingEntries) -> bytes:
    return json.dumps(
        {key: [entry.most, entry.lands_by] for key, entry in entries.items()},
        separators=(",", ":"),
    ).encode()


def _decode(plaintext: bytes) -> PendingEntries:
    fields: dict[str, list[float]] = json.loads(plaintext)
    return {key: Pending(int(most), float(lands_by)) for key, (most, lands_by) in fields.items()}
