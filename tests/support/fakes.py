"""Test doubles for the broker's collaborators: a movable clock and a scripted STS."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

from satchel_server.credentials.broker import AssumeRoleRequest, AssumeRoleResult
from satchel_server.credentials.types import TemporaryCredentials

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class ScriptedSts:
    """Counts calls; mints credentials that live as long as asked (or `grant` seconds)."""

    def __init__(self, clock: FakeClock, delay: float = 0.01) -> None:
        self.clock = clock
        self.delay = delay
        self.calls: list[AssumeRoleRequest] = []
        self.called = asyncio.Event()  # set by the first call
        self.fail_with: Exception | None = None
        self.grant: int | None = None
        self._ids = itertools.count(1)

    async def assume_role(
        self, request: AssumeRoleRequest, *, deadline: float | None
    ) -> AssumeRoleResult:
        self.calls.append(request)
        self.called.set()
        async with asyncio.timeout_at(deadline):  # as the real transport does
            await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with
        n = next(self._ids)
        life = self.grant or request.duration_seconds
        creds = TemporaryCredentials(
            f"STS.id{n}", f"secret{n}", f"token{n}", self.clock.now + timedelta(seconds=life)
        )
        return AssumeRoleResult(creds, request_id=f"req-{n}")
