"""A token bucket with reservations: the process-wide AssumeRole budget.

STS allows 100 AssumeRole calls per second per account, shared by every caller.
A caller reserves the next free slot and sleeps until it; when that slot lies
beyond the caller's deadline it is refused at once (nothing reserved), with the
wait it would have needed, so it can be returned as a retry hint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from satchel_server.errors import UpstreamUnavailable


class Budget(Protocol):
    """What the broker and the signers draw from before each AssumeRole.

    A TokenBucket (one process), or the fleet's shared bucket (service.fleet.budget).
    """

    @property
    def available(self) -> float:
        """Tokens in hand as last seen (negative while reservations are queued)."""
        ...

    async def acquire(self, max_wait_seconds: float | None) -> None:
        """Take a token, sleeping until it is due; UpstreamUnavailable if it is due too late."""
        ...


class TokenBucket:
    def __init__(
        self,
        rate_per_second: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self._rate = rate_per_second
        # A burst of one second's worth by default: a cold start may spend it at once.
        self._capacity = burst if burst is not None else max(1.0, rate_per_second)
        self._clock = clock
        self._tokens = self._capacity
        self._updated = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        return now

    @property
    def available(self) -> float:
        """Tokens in hand now (negative while reservations are queued)."""
        self._refill()
        return self._tokens

    def try_take(self) -> float:
        """Take a token if one is in hand; else take nothing and return the seconds until one is.

        For rate limits, which refuse at once instead of queueing a reservation.
        """
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate

    def reserve(self, max_wait_seconds: float | None) -> float:
        """Take a token; return how long to wait before using it.

        Raises UpstreamUnavailable (nothing taken) if the wait would exceed
        `max_wait_seconds`; None means wait as long as needed.
        """
        self._refill()
        wait = max(0.0, (1.0 - self._tokens) / self._rate)
        if max_wait_seconds is not None and wait > max_wait_seconds:
            raise UpstreamUnavailable("the STS call budget is spent", retry_after_seconds=wait)
        self._tokens -= 1.0
        return wait

    async def acquire(self, max_wait_seconds: float | None) -> None:
        wait = self.reserve(max_wait_seconds)
        if wait > 0:
            await asyncio.sleep(wait)


# AssumeRole's limit per Alibaba Cloud account, shared by every caller of it.
STS_ACCOUNT_LIMIT_PER_SECOND = 100.0


def sts_budget(rate_per_second: float, limit: float = STS_ACCOUNT_LIMIT_PER_SECOND) -> TokenBucket:
    """A budget whose burst plus one second's refill never exceeds `limit`.

    A burst of a full second's worth would let 2 x rate calls land in STS's first
    second: at 90/s that is 180 against a limit of 100, and the excess comes back
    as Throttling.User to callers that waited for nothing.
    """
    return TokenBucket(
        rate_per_second, burst=max(1.0, min(rate_per_second, limit - rate_per_second))
    )
