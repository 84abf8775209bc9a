"""The SharedCache on Redis: sealed entries, one replica minting per key, local fallback.

A miss reads the entry; if none is usable, the replica takes the key's fleet
lock and mints (re-reading first: the entry may have landed meanwhile), or,
when another replica holds the lock, polls for the entry with backoff until it
appears, the lock frees (a failed or dead holder: then it tries the lock
itself), or the deadline passes. Polling, not pub/sub: it needs no extra
connection per replica, cannot miss a message across a reconnect, and one
waiting flight per key per replica costs a handful of GETs.

Any Redis failure before minting falls back to minting locally; a failure after
it only loses the write. No request fails because Redis failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from satchel_server.credentials.broker import AssumeRoleResult
from satchel_server.credentials.types import Clock, TemporaryCredentials, utc_now
from satchel_server.errors import UpstreamDeadline
from satchel_server.fleet.crypto import Keyring
from satchel_server.fleet.link import RedisLink, SharedUnavailable
from satchel_server.fleet.lock import FleetLock

# Waiting for another replica's AssumeRole (tens of ms on the emulator, ~100 ms on STS).
FIRST_POLL_SECONDS = 0.02
MAX_POLL_SECONDS = 0.25

Usable = Callable[[TemporaryCredentials], bool]
Mint = Callable[[], Awaitable[AssumeRoleResult]]


def encode(result: AssumeRoleResult) -> bytes:
    creds = result.credentials
    return json.dumps(
        {
            "id": creds.access_key_id,
            "secret": creds.access_key_secret,
            "token": creds.security_token,
            "expires": creds.expiration.timestamp(),
            "request": result.request_id,
        }
    ).encode()


def decode(data: bytes) -> AssumeRoleResult:
    fields = json.loads(data)
    creds = TemporaryCredentials(
        fields["id"],
        fields["secret"],
        fields["token"],
        datetime.fromtimestamp(fields["expires"], UTC),
    )
    return AssumeRoleResult(creds, fields["request"])


class RedisSharedCache:
    def __init__(
        self,
        link: RedisLink,
        keyring: Keyring,
        *,
        key_prefix: str,
        lock_ttl_seconds: float,
        l1_ttl_seconds: float,
        clock: Clock = utc_now,
    ) -> None:
        self._link = link
        self._keyring = keyring
        self._prefix = key_prefix
        self._lock = FleetLock(link, lock_ttl_seconds)
        self._l1_ttl = l1_ttl_seconds
        self._clock = clock

    @property
    def up(self) -> bool | None:
        return self._link.up

    @property
    def revalidate_after(self) -> float | None:
        # While Redis is down the local cache is all there is: serve it while fresh,
        # except that a request now and then goes through to probe Redis.
        return self._l1_ttl if self._link.probe_due else None

    async def get_or_mint(
        self,
        key: Sequence[str],
        *,
        usable: Usable,
        mint: Mint,
        keep_seconds: float,
        deadline: float | None,
        have: AssumeRoleResult | None = None,
    ) -> tuple[AssumeRoleResult, bool]:
        name = self._keyring.name(key)
        try:
            found = await self._read(name)
        except SharedUnavailable:
            if have is not None and usable(have.credentials):
                return have, False
            return await mint(), True
        if found is not None and usable(found.credentials):
            return found, False
        if have is not None and usable(have.credentials):
            # Redis lost it (restart, eviction) while we still hold it: put it back.
            await self._write(name, have, keep_seconds)
            return have, False
        return await self._take_turns(name, usable, mint, keep_seconds, deadline)

    async def _take_turns(
        self, name: str, usable: Usable, mint: Mint, keep_seconds: float, deadline: float | None
    ) -> tuple[AssumeRoleResult, bool]:
        lock_name = f"{self._prefix}lock:{name}"
        pause = FIRST_POLL_SECONDS
        while True:
            try:
                token = await self._lock.acquire(lock_name)
            except SharedUnavailable:
                return await mint(), True
            if token is not None:
                return await self._mint_holding(
                    name, lock_name, token, usable=usable, mint=mint, keep_seconds=keep_seconds
                )
            await _pause(pause, deadline)
            pause = min(pause * 2, MAX_POLL_SECONDS)
            try:
                found = await self._read(name)
            except SharedUnavailable:
                return await mint(), True
            if found is not None and usable(found.credentials):
                return found, False

    async def _mint_holding(
        self,
        name: str,
        lock_name: str,
        token: str,
        *,
        usable: Usable,
        mint: Mint,
        keep_seconds: float,
    ) -> tuple[AssumeRoleResult, bool]:
        async with self._lock.kept(lock_name, token):
            # The holder before us may have written it between our read and our lock.
            try:
                found = await self._read(name)
            except SharedUnavailable:
                found = None
            if found is not None and usable(found.credentials):
                return found, False
            result = await mint()
            await self._write(name, result, keep_seconds)
            return result, True

    async def _read(self, name: str) -> AssumeRoleResult | None:
        """The entry, or None (absent, or sealed with a key we lack). Raises SharedUnavailable."""
        redis_key = f"{self._prefix}entry:{name}"
        blob = await self._link.call(lambda r: r.get(redis_key))
        if not isinstance(blob, bytes):
            return None
        plaintext = self._keyring.open(name, blob)
        return None if plaintext is None else decode(plaintext)

    async def _write(self, name: str, result: AssumeRoleResult, keep_seconds: float) -> None:
        """Store with TTL = expiry - keep_seconds; a Redis failure only loses the write."""
        life = result.credentials.remaining_seconds(self._clock()) - keep_seconds
        if life < 1:
            return
        redis_key = f"{self._prefix}entry:{name}"
        blob = self._keyring.seal(name, encode(result))
        with contextlib.suppress(SharedUnavailable):
            await self._link.call(lambda r: r.set(redis_key, blob, px=int(life * 1000)))


async def _pause(seconds: float, deadline: float | None) -> None:
    if deadline is not None:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise UpstreamDeadline("the deadline ran out while another replica called STS")
        seconds = min(seconds, left)
    await asyncio.sleep(seconds)
