"""CredentialBroker: player credentials from STS, cached, coalesced and budgeted.

- Cache keyed by (scope, player, permission set, policy digest), bounded LRU,
  secrets only in memory. An entry is served only while its remaining life is
  at least the scope's minimum and a configured share of the TTL asked for.
- Single-flight: concurrent misses for one key share one AssumeRole.
- Budget: every AssumeRole first takes a token from the process-wide bucket;
  when none comes within the caller's deadline the call fails UNAVAILABLE.

The broker knows STS only through the StsClient protocol, so it holds no I/O
code and is tested with a scripted client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from service.budget import TokenBucket
from service.config import CacheSettings
from service.credentials import Clock, TemporaryCredentials, utc_now
from service.errors import UpstreamDeadline, UpstreamUnavailable
from service.policy import policy_digest, session_policy
from service.scopes import Permission, TokenRequest, role_session_name


@dataclass(frozen=True, slots=True)
class AssumeRoleRequest:
    role_arn: str
    role_session_name: str
    policy: str
    duration_seconds: int
    external_id: str = ""


@dataclass(frozen=True, slots=True)
class AssumeRoleResult:
    credentials: TemporaryCredentials
    request_id: str


class StsClient(Protocol):
    async def assume_role(
        self, request: AssumeRoleRequest, *, deadline: float | None
    ) -> AssumeRoleResult:
        """Call AssumeRole, finishing by `deadline` (event-loop time; None: own limits)."""
        ...


@dataclass(frozen=True, slots=True)
class IssuedCredentials:
    credentials: TemporaryCredentials
    # STS's RequestId for the call that minted them (for the audit trail).
    request_id: str
    from_cache: bool


CacheKey = tuple[str, str, frozenset[Permission], str]


@dataclass(slots=True)
class BrokerStats:
    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    evictions: int = 0
    sts_calls: int = 0


class CredentialBroker:
    def __init__(
        self,
        sts: StsClient,
        settings: CacheSettings,
        budget: TokenBucket,
        clock: Clock = utc_now,
    ) -> None:
        self._sts = sts
        self._settings = settings
        self._budget = budget
        self._clock = clock
        self._cache: OrderedDict[CacheKey, AssumeRoleResult] = OrderedDict()
        # Calls in flight per key, with the DurationSeconds each asked for.
        self._flights: dict[CacheKey, tuple[asyncio.Future[AssumeRoleResult], int]] = {}
        self.stats = BrokerStats()

    def __len__(self) -> int:
        return len(self._cache)

    async def credentials_for(
        self, request: TokenRequest, *, deadline: float | None
    ) -> IssuedCredentials:
        """Credentials for a validated request, by `deadline` (event-loop time, or None)."""
        scope = request.scope
        # Built (and size-checked) before any STS call: too large fails closed here.
        policy = session_policy(
            scope.bucket, request.prefix, request.permissions, scope.policy_max_chars
        )
        key: CacheKey = (scope.name, request.player_id, request.permissions, policy_digest(policy))
        needed = max(
            float(scope.ttl_min_seconds),
            self._settings.min_remaining_share * request.ttl_seconds,
        )
        cached = self._fresh(key, needed)
        if cached is not None:
            self.stats.hits += 1
            return IssuedCredentials(cached.credentials, cached.request_id, from_cache=True)
        self.stats.misses += 1
        joined = self._flights.get(key)
        if joined is not None and joined[1] >= needed:
            flight = joined[0]
            self.stats.coalesced += 1
        else:
            # No call in flight, or one asking too short a life for this caller (a
            # 900 s ask must not make a concurrent 3600 s ask fail): make our own.
            assume = AssumeRoleRequest(
                role_arn=scope.role_arn,
                role_session_name=role_session_name(request.player_id),
                policy=policy,
                duration_seconds=request.ttl_seconds,
                external_id=scope.external_id,
            )
            flight = self._start_flight(key, assume, deadline)
        try:
            # Shielded: one caller giving up must not cancel the call others wait on.
            async with asyncio.timeout_at(deadline):
                result = await asyncio.shield(flight)
        except TimeoutError:
            raise UpstreamDeadline("the deadline ran out while waiting for STS") from None
        if result.credentials.remaining_seconds(self._clock()) < needed:
            # Only possible when STS grants less than asked (a role's MaxSessionDuration).
            raise UpstreamUnavailable("STS returned credentials shorter-lived than required")
        return IssuedCredentials(result.credentials, result.request_id, from_cache=False)

    def _fresh(self, key: CacheKey, needed_seconds: float) -> AssumeRoleResult | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry.credentials.remaining_seconds(self._clock()) < needed_seconds:
            return None
        self._cache.move_to_end(key)
        return entry

    def _start_flight(
        self, key: CacheKey, assume: AssumeRoleRequest, deadline: float | None
    ) -> asyncio.Future[AssumeRoleResult]:
        flight = asyncio.ensure_future(self._fetch(key, assume, deadline))
        self._flights[key] = (flight, assume.duration_seconds)

        def landed(done: asyncio.Future[AssumeRoleResult]) -> None:
            current = self._flights.get(key)
            if current is not None and current[0] is done:
                del self._flights[key]
            # Mark a failure as seen even when every waiter has gone away.
            if not done.cancelled():
                done.exception()

        flight.add_done_callback(landed)
        return flight

    async def _fetch(
        self, key: CacheKey, assume: AssumeRoleRequest, deadline: float | None
    ) -> AssumeRoleResult:
        loop = asyncio.get_running_loop()
        await self._budget.acquire(None if deadline is None else deadline - loop.time())
        self.stats.sts_calls += 1
        result = await self._sts.assume_role(assume, deadline=deadline)
        self._store(key, result)
        return result

    def _store(self, key: CacheKey, result: AssumeRoleResult) -> None:
        self._cache[key] = result
        self._cache.move_to_end(key)
        while len(self._cache) > self._settings.max_entries:
            self._cache.popitem(last=False)
            self.stats.evictions += 1

    async def close(self) -> None:
        """Cancel flights nobody will wait for (at shutdown)."""
        for flight, _ in list(self._flights.values()):
            flight.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await flight
        self._flights.clear()
