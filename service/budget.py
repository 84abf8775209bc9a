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

from service.errors import UpstreamUnavailable


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
