"""Satchel's own identity: the credentials it signs AssumeRole with, and where they come from.

The sources are the Alibaba Cloud credential chain's (as `alibabacloud-credentials` documents
it): an AccessKey in the environment (with `ALIBABA_CLOUD_SECURITY_TOKEN`, an STS one), OIDC
(RRSA) through AssumeRoleWithOIDC, the ECS instance's RAM role through the metadata service,
and a credentials URI. Each is a source here; the ones that call out live in `sts/`, on
Satchel's own transport. `default` tries them in that order and keeps the first that yields.

Temporary credentials are refreshed before they expire: once less than half their life, and at
most REFRESH_AHEAD_SECONDS, is left, the next use fetches new ones (one fetch however many
callers wait). If that fails while the old ones still work, they go on being used.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from satchel_server.credentials.types import Clock, utc_now
from satchel_server.errors import DomainError, UpstreamUnavailable

log = logging.getLogger(__name__)

REFRESH_AHEAD_SECONDS = 15 * 60  # as the official SDKs: their credentials go stale 15 min early
# After a failed refresh while the old credentials still work, wait this long before the
# next attempt, so callers do not hammer a failing metadata service.
RETRY_AFTER_FAILURE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Identity:
    """Credentials to sign with; `expiration` None for a long-lived AccessKey."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(default="", repr=False)
    expiration: datetime | None = None


class IdentityError(DomainError):
    """A source could not yield credentials. The message never holds a secret."""


class IdentitySource(Protocol):
    """One link of the chain. `name` is what logs and configuration call it."""

    @property
    def name(self) -> str: ...

    async def fetch(self) -> Identity:
        """Fresh credentials, or IdentityError saying why there are none."""
        ...


@dataclass(frozen=True)
class StaticSource:
    """The environment's AccessKey (and STS token, if any): no I/O, never refreshed."""

    identity: Identity | None
    name: str = "env"

    async def fetch(self) -> Identity:
        if self.identity is None:
            raise IdentityError(
                "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET are not set"
            )
        return self.identity


class NoIdentity(IdentityError):
    """No source of the chain yielded credentials."""


class CredentialChain:
    """Tries sources in order; the first that yields is used from then on."""

    def __init__(self, sources: Sequence[IdentitySource]) -> None:
        self._sources = list(sources)
        self.chosen: IdentitySource | None = None

    @property
    def name(self) -> str:
        return self.chosen.name if self.chosen is not None else "default"

    async def fetch(self) -> Identity:
        if self.chosen is not None:
            return await self.chosen.fetch()
        reasons: list[str] = []
        for source in self._sources:
            try:
                identity = await source.fetch()
            except IdentityError as error:
                reasons.append(f"{source.name}: {error}")
                continue
            self.chosen = source
            return identity
        raise NoIdentity("no source yielded credentials (" + "; ".join(reasons) + ")")


class RefreshingIdentity:
    """The current credentials of one source, refreshed ahead of their expiry."""

    def __init__(self, source: IdentitySource, clock: Clock = utc_now) -> None:
        self._source = source
        self._clock = clock
        self._current: Identity | None = None
        self._refresh_at: datetime | None = None
        self._retry_at: datetime | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    @classmethod
    def of_key(cls, access_key_id: str, access_key_secret: str) -> RefreshingIdentity:
        """A RAM user's AccessKey as an identity (tests, tools)."""
        return cls(StaticSource(Identity(access_key_id, access_key_secret)))

    @property
    def source_name(self) -> str:
        return self._source.name

    @property
    def long_lived(self) -> Identity | None:
        """A RAM user's AccessKey (no token, no expiry), once fetched; else None."""
        current = self._current
        if current is None or current.expiration is not None or current.security_token:
            return None
        return current

    async def start(self) -> Identity:
        """Fetch once; IdentityError when the source yields nothing (the server must not start)."""
        async with self._lock:
            return await self._refresh()

    async def current(self) -> Identity:
        """Credentials valid now, refreshed first when they are due."""
        current = self._current
        if current is not None and not self._due(current):
            return current
        async with self._lock:
            current = self._current
            if current is not None and not self._due(current):
                return current  # another caller refreshed while this one waited
            try:
                return await self._refresh()
            except IdentityError as error:
                if current is None or not self._still_valid(current):
                    raise UpstreamUnavailable(
                        f"Satchel's own credentials ({self.source_name}) could not be "
                        f"refreshed: {error}",
                        RETRY_AFTER_FAILURE_SECONDS,
                    ) from None
                self._retry_at = self._clock() + timedelta(seconds=RETRY_AFTER_FAILURE_SECONDS)
                log.warning(
                    "identity: refreshing from %s failed (%s); the current credentials "
                    "last until %s",
                    self.source_name,
                    error,
                    current.expiration.isoformat() if current.expiration else "never",
                )
                return current

    def _due(self, identity: Identity) -> bool:
        now = self._clock()
        if not self._still_valid(identity):
            return True  # the pause after a failure never outlasts the credentials
        if self._retry_at is not None and now < self._retry_at:
            return False
        return self._refresh_at is not None and now >= self._refresh_at

    def _still_valid(self, identity: Identity) -> bool:
        return identity.expiration is None or identity.expiration > self._clock()

    async def _refresh(self) -> Identity:
        fetched_at = self._clock()
        identity = await self._source.fetch()
        if identity.expiration is not None and identity.expiration <= fetched_at:
            raise IdentityError(f"{self.source_name} returned credentials that already expired")
        self._current, self._retry_at = identity, None
        self._refresh_at = refresh_time(fetched_at, identity.expiration)
        self.refreshes += 1
        log.info(
            "identity: using credentials from %s (%s)",
            self.source_name,
            f"valid until {identity.expiration.isoformat()}, refreshed from "
            f"{self._refresh_at.isoformat()}"
            if identity.expiration is not None and self._refresh_at is not None
            else "a long-lived AccessKey, never refreshed",
        )
        return identity


def refresh_time(fetched_at: datetime, expiration: datetime | None) -> datetime | None:
    """When credentials fetched at `fetched_at` are due for refresh (None: never)."""
    if expiration is None:
        return None
    ahead = min(REFRESH_AHEAD_SECONDS, (expiration - fetched_at).total_seconds() / 2)
    return expiration - timedelta(seconds=ahead)
