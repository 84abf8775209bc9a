"""A scripted folder lister, a movable clock and FolderQuotas built around them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from satchel_server.config import AccessKey, ScopeSettings
from satchel_server.credentials.budget import TokenBucket
from satchel_server.errors import UsageUnavailable
from satchel_server.presigning.quota import (
    FolderListing,
    FolderQuery,
    FolderQuotas,
    PendingUploads,
)
from satchel_server.presigning.signing_credentials import ScopeRefresher, ScopeSigningCredentials
from satchel_server.rules.scopes import PresignRequest, validate_presign_request
from satchel_server.vocabulary import HttpMethod
from support.fakes import FakeClock, ScriptedSts
from support.scopes import make_scope

QUOTA = 1000
SCOPE = make_scope(folder_quota_bytes=QUOTA, sign_with_access_key=True, folder_lookups_per_second=2)
PREFIX = "players/p1/"


class Seconds:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeLister:
    """Answers each folder from `sizes` (by full key); counts lookups; may fail or wait."""

    def __init__(self, sizes: Mapping[str, int] | None = None) -> None:
        self.sizes = dict(sizes or {})
        self.queries: list[FolderQuery] = []
        self.fail: UsageUnavailable | None = None
        self.release: asyncio.Event | None = None
        self.called = asyncio.Event()  # set by the first lookup
        self._queried = asyncio.Event()  # set by every lookup

    async def until_queried(self, count: int) -> None:
        """Return once `count` lookups have begun."""
        while len(self.queries) < count:
            self._queried.clear()
            await self._queried.wait()

    async def list_folder(self, query: FolderQuery) -> FolderListing:
        self.queries.append(query)
        self.called.set()
        self._queried.set()
        if self.release is not None:
            await self.release.wait()
        if self.fail is not None:
            raise self.fail
        found = {k: v for k, v in self.sizes.items() if k.startswith(query.prefix)}
        return FolderListing(found, complete=len(found) <= query.max_objects)


def quotas(
    lister: FakeLister,
    clock: Seconds | None = None,
    scope: ScopeSettings = SCOPE,
    folders_kept: int = 1000,
    pending: PendingUploads | None = None,
) -> FolderQuotas:
    signer = ScopeRefresher(scope, ScriptedSts(FakeClock()), TokenBucket(1), AccessKey("LTAI", "s"))
    return FolderQuotas(
        {scope.name: scope},
        ScopeSigningCredentials({scope.name: signer}),
        lister,
        clock=clock or Seconds(),
        folders_kept=folders_kept,
        pending=pending,
    )


def upload(
    key: str = "saves/a.dat",
    size: int = 100,
    *,
    player: str = "p1",
    method: HttpMethod = HttpMethod.PUT,
    scope: ScopeSettings = SCOPE,
    expires: int = 600,
) -> PresignRequest:
    put = method is HttpMethod.PUT
    return validate_presign_request(
        {scope.name: scope},
        scope_name="",
        player_id=player,
        key=key,
        method=method,
        expires_seconds=expires,
        content_type="",
        max_size=0 if put or method is not HttpMethod.POST else size,
        forbid_overwrite=False,
        content_length=size if put else None,
    )
