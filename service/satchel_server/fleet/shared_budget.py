"""The fleet's AssumeRole budget: one token bucket in Redis that every replica draws from.

One Lua script refills by Redis's own clock (TIME: the replicas' clocks never
matter), then reserves a token or refuses, atomically. Like the local bucket it
reserves the next slot (tokens may go negative) and the caller sleeps until
it; a slot beyond the caller's deadline is refused with nothing taken.

The burst is a tenth of a second's worth: any one-second window then sees at
most 1.1 x the rate (99 calls for the default 90/s), inside STS's 100/s.
When Redis fails, the replica draws from its local bucket instead.
"""

from __future__ import annotations

import asyncio

from satchel_server.credentials.budget import TokenBucket
from satchel_server.errors import UpstreamUnavailable
from satchel_server.fleet.link import RedisLink, SharedUnavailable

# KEYS[1]: the bucket (hash of tokens, ts). ARGV: rate/s, capacity, max wait s (< 0: none).
# Returns {granted 0/1, wait s, tokens left} (numbers as strings: Lua floats would truncate).
RESERVE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = math.max(0, (1 - tokens) / rate)
if max_wait >= 0 and wait > max_wait then
    return {0, tostring(wait), tostring(tokens)}
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(((capacity - tokens) / rate + 1) * 1000))
return {1, tostring(wait), tostring(tokens)}
"""


def fleet_capacity(rate_per_second: float) -> float:
    return max(1.0, rate_per_second / 10)


class FleetBudget:
    def __init__(self, link: RedisLink, key: str, rate_per_second: float, local: TokenBucket):
        self._link = link
        self._key = key
        self._rate = rate_per_second
        self._capacity = fleet_capacity(rate_per_second)
        self._local = local
        self._reserve = link.client.register_script(RESERVE_SCRIPT)
        self._last_seen = self._capacity

    @property
    def available(self) -> float:
        """The fleet's tokens as of this replica's last draw (the local bucket's while down)."""
        return self._last_seen if self._link.up else self._local.available

    async def acquire(self, max_wait_seconds: float | None) -> None:
        limit = -1.0 if max_wait_seconds is None else max(0.0, max_wait_seconds)
        args = [repr(self._rate), repr(self._capacity), repr(limit)]
        try:
            granted, wait_text, tokens_text = await self._link.call(
                lambda r: self._reserve(keys=[self._key], args=args, client=r)
            )
        except SharedUnavailable:
            await self._local.acquire(max_wait_seconds)
            return
        wait = float(wait_text)
        self._last_seen = float(tokens_text)
        if not int(granted):
            raise UpstreamUnavailable(
                "the fleet's STS call budget is spent", retry_after_seconds=wait
            )
        if wait > 0:
            await asyncio.sleep(wait)
