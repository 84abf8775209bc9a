"""Folder quotas: an upload is presigned only while the player's folder has room for it.

A scope with ``folder_quota_bytes`` bounds what each player's folder may hold. Before a
PUT URL or POST form is signed, the folder's size is estimated as

    listed  + for each key an upload was allowed to and may still land on,
              what that key could grow to beyond its listed size

and the upload is refused (QuotaExceeded) when the estimate plus this upload's cap
(a PUT's exact size, a POST's max_size) is over the quota. Per key, because a key holds
one object: overwriting a 1 MB save with another costs nothing more.

``listed`` comes from ListObjectsV2 on the scope's presigning credentials, cached for a
few seconds per folder; lookups are single-flight per folder and rate-bounded per scope,
so a burst of presigns is at most one ListObjects per folder and never more than the
scope's rate. A lookup that fails refuses the upload: a quota that cannot be checked is
not waived (UsageUnavailable, with a retry hint).

An allowed upload stays *pending* until a listing that began after it could last land:
its URL's expiry plus LANDING_ALLOWANCE_SECONDS (a body may still be arriving when the
URL expires). Until then it is counted whether it landed or not, so the estimate never
falls below what the folder can come to hold through this server's URLs. How far a
folder can pass its quota, and why (docs/operations.md, section 10):

* through one replica's URLs, by the cap of an upload still arriving when its pending
  entry ended (the landing allowance past its URL's expiry): until a listing sees it,
  the room it takes can be allowed again. Nothing else: each upload is checked and
  recorded with no await in between, so concurrent ones are counted one after another;
* each replica keeps its own pending entries: replicas serving one player at once each
  allow against the same listing, until their uploads land and are listed;
* anything that does not go through PresignObject (write credentials from IssueToken,
  refused in quota scopes; a versioned bucket's old versions) is not bounded here.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from satchel_server.config import ScopeSettings
from satchel_server.credentials.budget import TokenBucket
from satchel_server.errors import DomainError, QuotaExceeded, UsageUnavailable
from satchel_server.presigning.presigner import endpoint_of
from satchel_server.presigning.signing_credentials import ScopeSigningCredentials
from satchel_server.rules.scopes import PresignRequest
from satchel_server.signing import OssEndpoint, SigningCredentials

# A listing younger than this is reused for the folder's next uploads.
USAGE_FRESH_SECONDS = 5.0
# How long after its URL or form expires an upload is still counted as pending: a body
# that began before the expiry may still be arriving.
LANDING_ALLOWANCE_SECONDS = 900.0
# A lookup lists at most this many objects (10 ListObjectsV2 pages); a bigger folder
# cannot be measured cheaply, and uploads to it are refused.
MAX_LISTED_OBJECTS = 10_000
# Folders remembered (their listing and pending uploads); beyond, the least recently
# used folder with nothing pending is forgotten and simply listed again when next asked.
FOLDERS_KEPT = 100_000
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class FolderQuery:
    """One folder to list: where, with which credentials, and how many objects at most."""

    bucket: str
    region: str
    endpoint: OssEndpoint
    signature: str  # "v4" or "v1", as the scope presigns
    prefix: str
    credentials: SigningCredentials = field(repr=False)
    max_objects: int


@dataclass(frozen=True, slots=True)
class FolderListing:
    """Sizes by full key; `complete` is False when the folder holds more than was listed."""

    sizes: Mapping[str, int]
    complete: bool = True
    total: int = field(init=False)  # summed once: every upload to the folder reads it

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", sum(self.sizes.values()))


class FolderLister(Protocol):
    """Lists a folder (storage.listing.OssFolderLister). Raises UsageUnavailable on failure."""

    async def list_folder(self, query: FolderQuery) -> FolderListing: ...


class QuotaStats:
    """Counts for metrics, per scope: lookups by outcome, and refusals."""

    def __init__(self) -> None:
        self.lookups: dict[tuple[str, str], int] = {}
        self.refusals: dict[str, int] = {}

    def looked_up(self, scope: str, outcome: str) -> None:
        self.lookups[scope, outcome] = self.lookups.get((scope, outcome), 0) + 1

    def refused(self, scope: str) -> None:
        self.refusals[scope] = self.refusals.get(scope, 0) + 1


@dataclass(slots=True)
class _Folder:
    listing: FolderListing | None = None
    listed_at: float = float("-inf")  # when the listing's lookup began
    # key -> (largest cap allowed to it, when its last upload may still land)
    pending: dict[str, tuple[int, float]] = field(default_factory=dict)
    lookup: asyncio.Task[FolderListing] | None = None

    def settle(self) -> None:
        """Forget uploads the listing saw land, or that can no longer land."""
        self.pending = {
            key: entry for key, entry in self.pending.items() if entry[1] >= self.listed_at
        }

    def estimate(self, listing: FolderListing, key: str, cap: int) -> int:
        """What the folder could come to hold with this upload allowed too."""
        sizes = listing.sizes
        total = listing.total
        for name, (most, _) in self.pending.items():
            if name != key:
                total += max(0, most - sizes.get(name, 0))
        most = max(cap, self.pending.get(key, (0, 0.0))[0])
        return total + max(0, most - sizes.get(key, 0))

    def allow(self, key: str, cap: int, lands_by: float) -> None:
        most, until = self.pending.get(key, (0, lands_by))
        self.pending[key] = (max(most, cap), max(until, lands_by))

    def idle(self, now: float) -> bool:
        """Nothing that a new listing would not give back: safe to forget."""
        return (
            self.lookup is None
            and self.listing is None
            and all(until < now for _, until in self.pending.values())
        )


class FolderQuotas:
    """Checks uploads against their scope's folder quota, and remembers what it allowed."""

    def __init__(
        self,
        scopes: Mapping[str, ScopeSettings],
        signers: ScopeSigningCredentials,
        lister: FolderLister,
        *,
        clock: Clock = time.monotonic,
        stats: QuotaStats | None = None,
        fresh_seconds: float = USAGE_FRESH_SECONDS,
        folders_kept: int = FOLDERS_KEPT,
    ) -> None:
        self._signers = signers
        self._lister = lister
        self._clock = clock
        self.stats = stats or QuotaStats()
        self._fresh_seconds = fresh_seconds
        self._folders_kept = folders_kept
        self._endpoints = {name: endpoint_of(scope) for name, scope in scopes.items()}
        # One lookup budget per quota scope: a burst of presigns is never a burst of lists.
        self._lookup_rates = {
            name: TokenBucket(scope.folder_lookups_per_second, clock=clock)
            for name, scope in scopes.items()
            if scope.folder_quota_bytes
        }
        self._folders: OrderedDict[tuple[str, str], _Folder] = OrderedDict()
        # Listings by when they go stale (oldest first): a stale one is dropped, so memory
        # holds only the listings of the last few seconds, however many folders are known.
        self._listed: deque[tuple[float, _Folder]] = deque()

    @property
    def folders_tracked(self) -> int:
        return len(self._folders)

    @property
    def listings_held(self) -> int:
        return sum(folder.listing is not None for folder in self._folders.values())

    async def admit(self, request: PresignRequest) -> None:
        """Allow the upload `request` presigns, or raise QuotaExceeded / UsageUnavailable.

        Allowed, it is pending at once: the check and the record happen with no await
        between them, so concurrent uploads to one folder are counted one after another.
        """
        scope = request.scope
        cap = request.upload_cap
        if not scope.folder_quota_bytes or cap is None:
            return
        folder = self._folder((scope.name, request.player_id))
        listing = await self._listing(folder, request)
        if not listing.complete:
            self.stats.refused(scope.name)
            raise QuotaExceeded(
                f"folder {request.prefix} holds more than {MAX_LISTED_OBJECTS} objects, too "
                f"many to measure against scope {scope.name!r}'s quota; delete some to upload"
            )
        folder.settle()
        estimate = folder.estimate(listing, request.key, cap)
        if estimate > scope.folder_quota_bytes:
            self.stats.refused(scope.name)
            raise QuotaExceeded(
                f"folder {request.prefix} is at its quota: with this upload of up to {cap} "
                f"bytes it could hold {estimate} bytes, over scope {scope.name!r}'s quota of "
                f"{scope.folder_quota_bytes} bytes (uploads already allowed count until "
                "they land); delete objects to make room"
            )
        lands_by = self._clock() + request.expires_seconds + LANDING_ALLOWANCE_SECONDS
        folder.allow(request.key, cap, lands_by)

    def _folder(self, name: tuple[str, str]) -> _Folder:
        now = self._clock()
        while self._listed and self._listed[0][0] <= now:
            _, stale = self._listed.popleft()
            if stale.listed_at + self._fresh_seconds <= now:
                stale.listing = None
        folder = self._folders.get(name)
        if folder is not None:
            self._folders.move_to_end(name)
            return folder
        folder = self._folders[name] = _Folder()
        while len(self._folders) > self._folders_kept:
            oldest_name, oldest = next(iter(self._folders.items()))
            if not oldest.idle(now):
                break  # still counts uploads that may land: kept, over the bound for now
            del self._folders[oldest_name]
        return folder

    async def _listing(self, folder: _Folder, request: PresignRequest) -> FolderListing:
        if folder.listing is not None and self._clock() - folder.listed_at < self._fresh_seconds:
            return folder.listing
        if folder.lookup is None:
            folder.lookup = asyncio.create_task(self._look_up(folder, request))
            # Its failure reaches every waiter; this keeps it from being reported as
            # never retrieved when every waiter has gone.
            folder.lookup.add_done_callback(_retrieved)
        # Shielded: a caller that gives up does not cancel the lookup others wait on.
        return await asyncio.shield(folder.lookup)

    async def _look_up(self, folder: _Folder, request: PresignRequest) -> FolderListing:
        scope = request.scope
        try:
            wait = self._lookup_rates[scope.name].try_take()
            if wait > 0:
                self.stats.looked_up(scope.name, "rate_limited")
                raise UsageUnavailable(
                    f"scope {scope.name!r} is over its folder usage lookup rate "
                    f"({scope.folder_lookups_per_second:g}/s); retry after the RetryInfo delay",
                    wait,
                )
            query = FolderQuery(
                bucket=scope.bucket,
                region=scope.region,
                endpoint=self._endpoints[scope.name],
                signature=scope.presign_signature,
                prefix=request.prefix,
                credentials=self._signers.for_scope(scope.name).credentials,
                max_objects=MAX_LISTED_OBJECTS,
            )
            started = self._clock()
            try:
                listing = await self._lister.list_folder(query)
            except DomainError:
                self.stats.looked_up(scope.name, "failed")
                raise
            self.stats.looked_up(scope.name, "ok")
            folder.listing, folder.listed_at = listing, started
            self._listed.append((started + self._fresh_seconds, folder))
            return listing
        finally:
            folder.lookup = None


def _retrieved(task: asyncio.Task[FolderListing]) -> None:
    if not task.cancelled():
        task.exception()
