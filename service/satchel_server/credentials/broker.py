"""CredentialBroker: player credentials from STS, cached, coalesced and budgeted.

- Cache keyed by (scope, player, permission set, policy digest, lifetime class),
  bounded LRU, secrets only in memory. A credential's life has two bounds:
  - at most the TTL asked for: asks are grouped into lifetime classes (the TTL
    rounded down to a whole minute) and STS is asked for the class's duration,
    so a credential expires no later than `now + ttl` by Satchel's clock
    (`LIFETIME_SLACK_SECONDS` allows for STS's clock running ahead of ours);
  - at least the floor: an entry is served only while its remaining life is at
    least `min_remaining_seconds` and `min_remaining_share` of the TTL asked.
  So a 900 s ask never gets a 3600 s credential, and repeated asks of one class
  make one AssumeRole per refresh.
- Single-flight: concurrent misses for one key share one AssumeRole.
- Budget: every AssumeRole first takes a token from the budget (this process's,
  or the fleet's); when none comes within the caller's deadline the call fails
  UNAVAILABLE.
- Shared tier: a miss asks the SharedCache, which may hold what another replica
  minted, and which lets one replica of the fleet mint per key at a time. The
  default shares nothing. While entries are shared, the local cache is an L1:
  a local entry is served for `revalidate_after` seconds, then checked again.

The broker knows STS only through the StsClient protocol, so it holds no I/O
code and is tested with a scripted client.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from satchel_server.config import CacheSettings
from satchel_server.credentials.budget import Budget
from satchel_server.credentials.types import Clock, TemporaryCredentials, utc_now
from satchel_server.errors import UpstreamDeadline, UpstreamUnavailable
from satchel_server.rules.policy import player_session_policy
from satchel_server.rules.scopes import TokenRequest, role_session_name
from satchel_server.vocabulary import PlayerPermission


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


class SharedCache(Protocol):
    """Where replicas share minted credentials and take turns minting them."""

    @property
    def up(self) -> bool | None:
        """Whether the shared tier answers now; None when there is none."""
        ...

    @property
    def revalidate_after(self) -> float | None:
        """Seconds a local copy is served before asking again; None: nothing shared now."""
        ...

    async def get_or_mint(
        self,
        key: Sequence[str],
        *,
        usable: Callable[[TemporaryCredentials], bool],
        mint: Callable[[], Awaitable[AssumeRoleResult]],
        keep_seconds: float,
        deadline: float | None,
        have: AssumeRoleResult | None = None,
    ) -> tuple[AssumeRoleResult, bool]:
        """A usable result and whether this call minted it.

        From the shared tier when it holds a usable one; else `have` (a local copy,
        then published); else `mint()`, with at most one replica minting per key at
        a time. `keep_seconds`: an entry is worthless once it has less life left.
        """
        ...


class NoSharedCache:
    """The default SharedCache: nothing shared, every miss mints."""

    up: bool | None = None
    revalidate_after: float | None = None

    async def get_or_mint(
        self,
        key: Sequence[str],
        *,
        usable: Callable[[TemporaryCredentials], bool],
        mint: Callable[[], Awaitable[AssumeRoleResult]],
        keep_seconds: float,
        deadline: float | None,
        have: AssumeRoleResult | None = None,
    ) -> tuple[AssumeRoleResult, bool]:
        if have is not None and usable(have.credentials):
            return have, False
        return await mint(), True


# (scope, player, permissions, policy digest, DurationSeconds asked of STS)
CacheKey = tuple[str, str, frozenset[PlayerPermission], str, int]
Flight = asyncio.Future[tuple[AssumeRoleResult, bool]]

# Asks are grouped by whole minutes: one credential serves every ask of its minute.
LIFETIME_CLASS_SECONDS = 60
# How far a credential's expiration may lie beyond now + the TTL asked: none by
# Satchel's clock, since STS is asked for no more than that; this allows for STS's
# clock (which sets the expiration) running ahead of Satchel's.
LIFETIME_SLACK_SECONDS = 60


def lifetime_class(ttl_seconds: int) -> int:
    """The DurationSeconds STS is asked for: the TTL rounded down to a whole minute.

    Never below STS's 900 s minimum, since validated TTLs are whole seconds >= 900.
    """
    return ttl_seconds - ttl_seconds % LIFETIME_CLASS_SECONDS


@dataclass(frozen=True, slots=True)
class _Entry:
    result: AssumeRoleResult
    # When it was minted here or last confirmed with the shared tier.
    checked: datetime
    # What a cache hit returns, built once rather than on every hit.
    as_hit: IssuedCredentials


def shared_key(key: CacheKey) -> tuple[str, ...]:
    """The cache key as strings for the shared tier (which stores only a keyed hash of it)."""
    scope, player, permissions, digest, duration = key
    names = ",".join(sorted(p.value for p in permissions))
    return ("player", scope, player, names, digest, str(duration))


@dataclass(slots=True)
class BrokerStats:
    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    evictions: int = 0
    sts_calls: int = 0
    # Misses answered without an AssumeRole here: another replica's entry (or our
    # own local copy re-confirmed after its L1 time).
    shared_hits: int = 0


class CredentialBroker:
    def __init__(
        self,
        sts: StsClient,
        settings: CacheSettings,
        budget: Budget,
        clock: Clock = utc_now,
        *,
        shared: SharedCache | None = None,
        session_name_key: bytes | None = None,
    ) -> None:
        """`session_name_key` keys the hash in rewritten RoleSessionNames (None: random)."""
        self._sts = sts
        self._settings = settings
        self._budget = budget
        self._clock = clock
        self._shared: SharedCache = shared or NoSharedCache()
        self._session_name_key = session_name_key or secrets.token_bytes(32)
        self._cache: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._flights: dict[CacheKey, Flight] = {}
        self.stats = BrokerStats()

    @property
    def shared_up(self) -> bool | None:
        """Whether the fleet's shared cache answers (None: none configured)."""
        return self._shared.up

    def __len__(self) -> int:
        return len(self._cache)

    def _floor_seconds(self, ttl_seconds: int) -> float:
        """The life a credential handed out for a `ttl_seconds` ask has left, at least."""
        return max(
            float(self._settings.min_remaining_seconds),
            self._settings.min_remaining_share * ttl_seconds,
        )

    async def credentials_for(
        self, request: TokenRequest, *, deadline: float | None
    ) -> IssuedCredentials:
        """Credentials for a validated request, by `deadline` (event-loop time)."""
        scope = request.scope
        # Built (and size-checked) before any STS call: too large fails closed here.
        policy, digest = player_session_policy(
            scope.bucket, request.prefix, request.permissions, scope.policy_max_chars
        )
        duration = lifetime_class(request.ttl_seconds)
        key: CacheKey = (scope.name, request.player_id, request.permissions, digest, duration)
        needed = self._floor_seconds(request.ttl_seconds)
        fresh = self._fresh(key, needed)
        if fresh is not None and not self._due_for_check(fresh):
            self.stats.hits += 1
            return fresh.as_hit
        self.stats.misses += 1
        flight = self._flights.get(key)
        if flight is not None:
            # Same class, so the same duration: what it mints serves this ask too.
            self.stats.coalesced += 1
        else:
            assume = AssumeRoleRequest(
                role_arn=scope.role_arn,
                role_session_name=role_session_name(request.player_id, self._session_name_key),
                policy=policy,
                duration_seconds=duration,
                external_id=scope.external_id,
            )
            have = None if fresh is None else fresh.result
            flight = self._start_flight(key, assume, deadline, have)
        try:
            # Shielded: one caller giving up must not cancel the call others wait on.
            async with asyncio.timeout_at(deadline):
                result, minted = await asyncio.shield(flight)
        except TimeoutError:
            raise UpstreamDeadline("the deadline ran out while waiting for STS") from None
        if result.credentials.remaining_seconds(self._clock()) < needed:
            # Only possible when STS grants less than asked (a role's MaxSessionDuration).
            raise UpstreamUnavailable("STS returned credentials shorter-lived than required")
        return IssuedCredentials(result.credentials, result.request_id, from_cache=not minted)

    def _fresh(self, key: CacheKey, needed_seconds: float) -> _Entry | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry.result.credentials.remaining_seconds(self._clock()) < needed_seconds:
            return None
        self._cache.move_to_end(key)
        return entry

    def _due_for_check(self, entry: _Entry) -> bool:
        after = self._shared.revalidate_after
        return after is not None and (self._clock() - entry.checked).total_seconds() >= after

    def _start_flight(
        self,
        key: CacheKey,
        assume: AssumeRoleRequest,
        deadline: float | None,
        have: AssumeRoleResult | None,
    ) -> Flight:
        flight = asyncio.ensure_future(self._fetch(key, assume, deadline, have))
        self._flights[key] = flight

        def landed(done: Flight) -> None:
            if self._flights.get(key) is done:
                del self._flights[key]
            # Mark a failure as seen even when every waiter has gone away.
            if not done.cancelled():
                done.exception()

        flight.add_done_callback(landed)
        return flight

    async def _fetch(
        self,
        key: CacheKey,
        assume: AssumeRoleRequest,
        deadline: float | None,
        have: AssumeRoleResult | None,
    ) -> tuple[AssumeRoleResult, bool]:
        async def mint() -> AssumeRoleResult:
            loop = asyncio.get_running_loop()
            await self._budget.acquire(None if deadline is None else deadline - loop.time())
            self.stats.sts_calls += 1
            return await self._sts.assume_role(assume, deadline=deadline)

        # A shared entry of this class is worth taking while it has the floor of the
        # class's longest ask left: then it serves every ask of the class.
        longest_ask = assume.duration_seconds + LIFETIME_CLASS_SECONDS - 1
        needed = self._floor_seconds(longest_ask)
        result, minted = await self._shared.get_or_mint(
            shared_key(key),
            usable=lambda credentials: credentials.remaining_seconds(self._clock()) >= needed,
            mint=mint,
            keep_seconds=self._settings.min_remaining_seconds,
            deadline=deadline,
            have=have,
        )
        if not minted:
            self.stats.shared_hits += 1
        self._store(key, result)
        return result, minted

    def _store(self, key: CacheKey, result: AssumeRoleResult) -> None:
        hit = IssuedCredentials(result.credentials, result.request_id, from_cache=True)
        self._cache[key] = _Entry(result, self._clock(), hit)
        self._cache.move_to_end(key)
        while len(self._cache) > self._settings.max_entries:
            self._cache.popitem(last=False)
            self.stats.evictions += 1

    async def close(self) -> None:
        """Cancel flights nobody will wait for (at shutdown)."""
        for flight in list(self._flights.values()):
            flight.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await flight
        self._flights.clear()
