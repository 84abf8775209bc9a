"""Scope-level presigning credentials, refreshed ahead so no request waits on STS.

Each scope's signer holds STS credentials whose session policy reaches the
scope's whole player root with the scope's object actions. A background task
renews them once their remaining life falls below the longest URL the scope
may hand out plus a margin, so in steady state PresignObject never calls STS.
A scope may instead sign with the RAM user's own key (no expiry, no STS), when Satchel's
identity is such a key.
With a shared cache the replicas of a fleet take turns: one refreshes and the
others adopt what it stored, so the fleet makes one AssumeRole per refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from satchel_server.config import (
    PLAYER_PLACEHOLDER,
    SIGNER_MARGIN_SECONDS,
    AccessKey,
    ScopeSettings,
)
from satchel_server.credentials.broker import (
    AssumeRoleRequest,
    AssumeRoleResult,
    NoSharedCache,
    SharedCache,
    StsClient,
)
from satchel_server.credentials.budget import Budget
from satchel_server.credentials.types import Clock, TemporaryCredentials, utc_now
from satchel_server.errors import DomainError, UpstreamUnavailable
from satchel_server.rules.policy import policy_digest, signer_policy
from satchel_server.rules.scopes import scope_session_name
from satchel_server.signing import SigningCredentials
from satchel_server.vocabulary import PlayerPermission

log = logging.getLogger(__name__)

# How long one refresh attempt may take, and the pause between failed attempts.
REFRESH_TIMEOUT_SECONDS = 15.0
RETRY_PAUSE_SECONDS = (1.0, 30.0)


@dataclass(frozen=True, slots=True)
class HeldCredentials:
    """Credentials to sign with, and when they stop working (None: never)."""

    credentials: SigningCredentials
    expiration: datetime | None

    def usable_seconds(self, now: datetime) -> float | None:
        """How long a URL signed now may live: remaining life minus the margin."""
        if self.expiration is None:
            return None
        return (self.expiration - now).total_seconds() - SIGNER_MARGIN_SECONDS


def player_root(scope: ScopeSettings) -> str:
    """The part of the prefix template before the player id ("players/")."""
    return scope.prefix_template.split(PLAYER_PLACEHOLDER, 1)[0]


class ScopeRefresher:
    """One scope's signing credentials: fetched, then refreshed ahead in the background."""

    def __init__(
        self,
        scope: ScopeSettings,
        sts: StsClient,
        budget: Budget,
        access_key: AccessKey | None,
        clock: Clock = utc_now,
        *,
        shared: SharedCache | None = None,
    ) -> None:
        self.scope = scope
        self._sts = sts
        self._budget = budget
        self._clock = clock
        self._shared: SharedCache = shared or NoSharedCache()
        self._current: HeldCredentials | None = None
        self._rng = random.Random()  # noqa: S311 - jitter, not secrets
        if scope.sign_with_access_key:
            if access_key is None:
                raise ValueError(
                    f"scope {scope.name} signs with a long-lived AccessKey: none given"
                )
            self._current = HeldCredentials(
                SigningCredentials(access_key.access_key_id, access_key.access_key_secret), None
            )

    @property
    def current(self) -> HeldCredentials | None:
        return self._current

    def refresh_due_in(self) -> float:
        """Seconds until the credentials no longer cover the longest URL (<= 0: now)."""
        signer = self._current
        if signer is None:
            return 0.0
        usable = signer.usable_seconds(self._clock())
        if usable is None:
            return float("inf")
        return usable - self.scope.presign_expires_max_seconds

    @property
    def _refresh_below_seconds(self) -> float:
        """Credentials with less life than this cannot cover the longest URL: refresh."""
        return self.scope.presign_expires_max_seconds + SIGNER_MARGIN_SECONDS

    def _lasts(self, credentials: TemporaryCredentials) -> bool:
        """Whether credentials (another replica's) are not yet due for refresh."""
        return credentials.remaining_seconds(self._clock()) > self._refresh_below_seconds

    async def refresh(self) -> None:
        """New credentials for the scope (one AssumeRole, or another replica's); used at once."""
        scope = self.scope
        allowed = [PlayerPermission(p) for p in scope.permissions]
        policy = signer_policy(
            scope.bucket,
            player_root(scope),
            allowed,
            scope.policy_max_chars,
            lists=bool(scope.folder_quota_bytes),
        )
        request = AssumeRoleRequest(
            role_arn=scope.role_arn,
            role_session_name=scope_session_name(scope.name),
            policy=policy,
            duration_seconds=scope.signer_ttl_seconds,
            external_id=scope.external_id,
        )
        deadline = asyncio.get_running_loop().time() + REFRESH_TIMEOUT_SECONDS

        async def mint() -> AssumeRoleResult:
            await self._budget.acquire(REFRESH_TIMEOUT_SECONDS)
            return await self._sts.assume_role(request, deadline=deadline)

        # Credentials are worthless to the fleet once due for refresh: kept in the
        # shared cache only until then.
        result, minted = await self._shared.get_or_mint(
            ("signer", scope.name, policy_digest(policy), str(scope.signer_ttl_seconds)),
            usable=self._lasts,
            mint=mint,
            keep_seconds=self._refresh_below_seconds,
            deadline=deadline,
        )
        creds = result.credentials
        self._current = HeldCredentials(
            SigningCredentials(creds.access_key_id, creds.access_key_secret, creds.security_token),
            creds.expiration,
        )
        log.info(
            "scope %s: signer credentials %s valid until %s (%s)",
            scope.name,
            creds.access_key_id,
            creds.expiration.isoformat(),
            "fetched" if minted else "shared by another replica",
        )

    async def run(self) -> None:
        """Refresh ahead, forever; failures are retried with jitter while old credentials last."""
        if self.scope.sign_with_access_key:
            return
        failures = 0
        while True:
            pause = self.refresh_due_in()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            try:
                await self.refresh()
                failures = 0
            except DomainError as error:
                failures += 1
                low, high = RETRY_PAUSE_SECONDS
                wait = self._rng.uniform(low, min(high, low * 2**failures))
                log.warning(
                    "scope %s: signer refresh failed (%s); retrying in %.1f s",
                    self.scope.name,
                    error,
                    wait,
                )
                await asyncio.sleep(wait)


class ScopeSigningCredentials:
    """Every scope's signing credentials: one ScopeRefresher per scope, and their tasks."""

    def __init__(self, signers: Mapping[str, ScopeRefresher]) -> None:
        self._signers = dict(signers)
        self._tasks: list[asyncio.Task[None]] = []

    def for_scope(self, name: str) -> HeldCredentials:
        signer = self._signers[name].current
        if signer is None:
            raise UpstreamUnavailable("presigning credentials are not ready yet", 1.0)
        return signer

    @property
    def ready(self) -> bool:
        return all(s.current is not None for s in self._signers.values())

    async def start(self) -> None:
        """Try to fetch every scope's credentials once, then keep them fresh in the background."""
        results = await asyncio.gather(
            *(s.refresh() for s in self._signers.values() if s.current is None),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, DomainError):
                raise result
            if isinstance(result, DomainError):
                log.error("signer credentials not obtained at start: %s", result)
        self._tasks = [asyncio.create_task(s.run()) for s in self._signers.values()]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
