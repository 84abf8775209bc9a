"""A short fleet-wide lock: SET NX PX with an owner token, released only by its owner.

It coordinates (one replica mints a credential while the others wait); it does
not protect data. A holder keeps its lock alive while it works (a mint may wait
on the STS budget longer than the TTL), so a dead holder releases it by expiry
within one TTL and a slow live one keeps it. If Redis cannot be reached to
extend it, the lock may lapse and a second replica mint as well: one extra call.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

from satchel_server.fleet.link import RedisLink, SharedUnavailable

# Delete only if the value is still our token: never another holder's lock.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


# Reset the expiry only if the value is still our token.
EXTEND_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class FleetLock:
    def __init__(self, link: RedisLink, ttl_seconds: float) -> None:
        self._link = link
        self._ttl_ms = max(1, round(ttl_seconds * 1000))
        self._release = link.client.register_script(RELEASE_SCRIPT)
        self._extend = link.client.register_script(EXTEND_SCRIPT)

    async def acquire(self, name: str) -> str | None:
        """The owner token, or None when another holds it. SharedUnavailable if Redis fails."""
        token = secrets.token_hex(16)
        taken = await self._link.call(lambda r: r.set(name, token, nx=True, px=self._ttl_ms))
        return token if taken else None

    async def release(self, name: str, token: str) -> None:
        # When Redis fails here the lock expires by itself: nothing to do.
        with contextlib.suppress(SharedUnavailable):
            await self._link.call(lambda r: self._release(keys=[name], args=[token], client=r))

    @contextlib.asynccontextmanager
    async def kept(self, name: str, token: str) -> AsyncIterator[None]:
        """Extend the lock every third of its TTL while the block runs, then release it."""
        keeper = asyncio.create_task(self._keep(name, token))
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await self.release(name, token)

    async def _keep(self, name: str, token: str) -> None:
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                held = await self._link.call(
                    lambda r: self._extend(keys=[name], args=[token, self._ttl_ms], client=r)
                )
            except SharedUnavailable:
                continue  # try again next time; meanwhile the lock may lapse
            if not held:
                return  # it lapsed and someone else may hold it now: nothing to keep
