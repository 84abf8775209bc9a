"""A short fleet-wide lock: SET NX PX with an owner token, released only by its owner.

It coordinates (one replica mints a credential while the others wait); it does
not protect data. A holder that dies releases it by expiry, and a holder slower
than the lock's TTL merely lets a second replica mint as well.
"""

from __future__ import annotations

import contextlib
import secrets

from service.fleet.link import RedisLink, SharedUnavailable

# Delete only if the value is still our token: never another holder's lock.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class FleetLock:
    def __init__(self, link: RedisLink, ttl_seconds: float) -> None:
        self._link = link
        self._ttl_ms = max(1, round(ttl_seconds * 1000))
        self._release = link.client.register_script(RELEASE_SCRIPT)

    async def acquire(self, name: str) -> str | None:
        """The owner token, or None when another holds it. SharedUnavailable if Redis fails."""
        token = secrets.token_hex(16)
        taken = await self._link.call(lambda r: r.set(name, token, nx=True, px=self._ttl_ms))
        return token if taken else None

    async def release(self, name: str, token: str) -> None:
        # When Redis fails here the lock expires by itself: nothing to do.
        with contextlib.suppress(SharedUnavailable):
            await self._link.call(lambda r: self._release(keys=[name], args=[token], client=r))
