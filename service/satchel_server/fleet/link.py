"""One Redis client with short timeouts, and whether Redis answers.

Every command goes through `RedisLink.call`. A failure or a timeout marks the
link down (logged once) and raises SharedUnavailable, which callers turn into
local behaviour. While down, commands fail at once without touching the
network, except one probe per `probe_seconds`; the first command that succeeds
marks the link up again (logged once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

T = TypeVar("T")
PROBE_SECONDS = 1.0


class SharedUnavailable(Exception):
    """Redis did not answer (in time): use local state."""


class RedisLink:
    def __init__(
        self,
        client: Redis,
        timeout_seconds: float,
        fallback_note: str,
        probe_seconds: float = PROBE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self._timeout = timeout_seconds
        self._fallback_note = fallback_note
        self._probe_seconds = probe_seconds
        self._clock = clock
        self._up = True
        self._next_probe = 0.0

    @property
    def up(self) -> bool:
        """Whether the last command reached Redis (True before the first one)."""
        return self._up

    @property
    def probe_due(self) -> bool:
        """Whether a command would reach Redis now (up, or down with a probe due)."""
        return self._up or self._clock() >= self._next_probe

    async def call(self, command: Callable[[Redis], Awaitable[T]]) -> T:
        if not self._up:
            now = self._clock()
            if now < self._next_probe:
                raise SharedUnavailable
            self._next_probe = now + self._probe_seconds  # this command is the probe
        try:
            async with asyncio.timeout(self._timeout):
                result = await command(self.client)
        except (RedisError, OSError, TimeoutError) as error:
            self._mark_down(error)
            raise SharedUnavailable from None
        if not self._up:
            self._up = True
            log.info("shared cache: Redis answers again; back to the fleet's cache and budget")
        return result

    def _mark_down(self, error: BaseException) -> None:
        if not self._up:
            return
        self._up = False
        self._next_probe = self._clock() + self._probe_seconds
        # The class name only: a message could carry the URL, and so a password.
        log.warning(
            "shared cache: Redis unreachable (%s); using %s until it answers",
            type(error).__name__,
            self._fallback_note,
        )

    async def close(self) -> None:
        await self.client.aclose()
