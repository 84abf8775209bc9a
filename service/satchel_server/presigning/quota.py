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
falls below what the folder can come to hold through the fleet's URLs. Its entry is kept
PENDING_KEPT_SECONDS longer: a listing begun earlier may still be in use (by another
replica, or awaiting its turn) and must count it.

Where the pending uploads are kept is a PendingUploads store; the admission rule above
is defined here once and handed to the store, which applies it to one folder's entries
atomically. LocalPendingUploads (the default) keeps them in this process: the rule runs
with no await, so concurrent uploads are counted one after another. In fleet mode
(`[cache] url`), fleet.pending_uploads keeps them in Redis, shared by every replica,
and applies the rule as a compare-and-set, so the fleet's uploads are counted one after
another too; when Redis does not answer, uploads to quota scopes are refused
(UsageUnavailable): a quota that cannot be checked is not waived.

How far a folder can pass its quota, and why (docs/operations.md, section 10):

* by the cap of an upload still arriving when its pending entry ended (the landing
  allowance past its URL's expiry): until a listing sees it, the room it takes can be
  allowed again. Nothing else, for one replica or a fleet sharing Redis;
* replicas without a shared cache each keep their own pending uploads: N of them serving
  one player at once can together allow up to N times the room left;
* anything that does not go through PresignObject (write credentials from IssueToken,
  refused in quota scopes; a versioned bucket's old versions) is not bounded here.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from satchel_server.config import ScopeSettings
from satchel_server.credentials.budget import TokenBucket
from satchel_server.errors import DomainError, QuotaExceeded, UsageDeadline, UsageUnavailable
from satchel_server.presigning.presigner import endpoint_of
from satchel_server.presigning.signing_credentials import ScopeSigningCredentials
from satchel_server.rules.scopes import PresignRequest
from satchel_server.signing import OssEndpoint, SigningCredentials

# A listing younger than this is reused for the folder's next uploads.
USAGE_FRESH_SECONDS = 5.0
# How long after its URL or form expires an upload is still counted as pending: a body
# that began before the expiry may still be arriving.
LANDING_ALLOWANCE_SECONDS = 900.0
# How long an entry is kept after its uploads could last land, though no longer counted
# by a listing begun after that: a listing in use (fresh, or awaiting its turn at the
# store) may have begun before, and needs it. Longer than any listing is used, and a
# listing older than this is not used (UsageUnavailable).
PENDING_KEPT_SECONDS = 300.0
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


FolderName = tuple[str, str]  # (scope, player id)


@dataclass(frozen=True, slots=True)
class Pending:
    """Uploads allowed to one key that may still land."""

    most: int  # the largest cap allowed to the key
    lands_by: float  # when the last of them may still land, on the store's clock


PendingEntries = Mapping[str, Pending]  # by full key
# The admission rule, as a store applies it: (now, the folder's entries) -> its new
# entries; raises (QuotaExceeded) to record nothing.
Decide = Callable[[float, PendingEntries], dict[str, Pending]]


class PendingUploads(Protocol):
    """Where allowed uploads are kept while they may land (this process, or the fleet)."""

    def now(self) -> float:
        """The clock `lands_by` and listing times are on."""
        ...

    async def update(self, folder: FolderName, decide: Decide) -> None:
        """Replace the folder's entries with decide(now, entries), with no other update to
        the folder in between; when decide raises, nothing changes and the error propagates.
        """
        ...


class LocalPendingUploads:
    """This process's pending uploads; a folder is dropped once no listing needs its entries."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._folders: dict[FolderName, dict[str, Pending]] = {}
        # (when a folder's entries are no longer needed, folder), soonest first.
        self._ends: list[tuple[float, FolderName]] = []

    @property
    def folders(self) -> int:
        return len(self._folders)

    def now(self) -> float:
        return self._clock()

    async def update(self, folder: FolderName, decide: Decide) -> None:
        now = self._clock()
        self._drop_ended(now)
        before = self._folders.get(folder, {})
        entries = decide(now, before)  # no await: nothing in between
        if not entries:
            self._folders.pop(folder, None)
            return
        self._folders[folder] = entries
        end = kept_until(entries)
        if not before or end > kept_until(before):
            heapq.heappush(self._ends, (end, folder))

    def _drop_ended(self, now: float) -> None:
        while self._ends and self._ends[0][0] < now:
            _, folder = heapq.heappop(self._ends)
            entries = self._folders.get(folder)
            if entries is not None and kept_until(entries) < now:
                del self._folders[folder]


def kept_until(entries: PendingEntries) -> float:
    """When no listing in use can need any of these entries (the store may drop them)."""
    return max(entry.lands_by for entry in entries.values()) + PENDING_KEPT_SECONDS


def admission(listing: FolderListing, listed_from: float, request: PresignRequest) -> Decide:
    """The rule: the upload is allowed if the folder, with every upload that may still land
    at its cap and this one too, fits the quota; allowed, it is pending until it could land.
    `listed_from`: when the listing began, on the store's clock.
    """
    scope, key = request.scope, request.key
    cap = request.upload_cap or 0
    sizes = listing.sizes

    def decide(now: float, entries: PendingEntries) -> dict[str, Pending]:
        if listed_from < now - PENDING_KEPT_SECONDS:
            # Entries it would need may be gone: measure again once it is stale.
            raise UsageUnavailable(
                f"the listing of folder {request.prefix} is too old", USAGE_FRESH_SECONDS
            )
        total = listing.total
        for name, entry in entries.items():
            # Uploads that could last land before the listing began are in it, or never
            # will be: only later ones count on top of it.
            if name != key and entry.lands_by >= listed_from:
                total += max(0, entry.most - sizes.get(name, 0))
        before = entries.get(key)
        counted = before is not None and before.lands_by >= listed_from
        most = max(cap, before.most) if before is not None and counted else cap
        estimate = total + max(0, most - sizes.get(key, 0))
        if estimate > scope.folder_quota_bytes:
            raise QuotaExceeded(
                f"folder {request.prefix} is at its quota: with this upload of up to {cap} "
                f"bytes it could hold {estimate} bytes, over scope {scope.name!r}'s quota of "
                f"{scope.folder_quota_bytes} bytes (uploads already allowed count until "
                "they land); delete objects to make room"
            )
        lands_by = now + request.expires_seconds + LANDING_ALLOWANCE_SECONDS
        # Kept, counted or not, while a listing in use may need them.
        kept = {n: e for n, e in entries.items() if e.lands_by >= now - PENDING_KEPT_SECONDS}
        previous = kept.get(key)
        if previous is not None:
            kept[key] = Pending(max(cap, previous.most), max(lands_by, previous.lands_by))
        else:
            kept[key] = Pending(cap, lands_by)
        return kept

    return decide


@dataclass(frozen=True, slots=True)
class _Measured:
    listing: FolderListing
    began: float  # when its lookup began, on the pending store's clock


@dataclass(slots=True)
class _Folder:
    measured: _Measured | None = None
    listed_at: float = float("-inf")  # when the listing's lookup began
    lookup: asyncio.Task[_Measured] | None = None

    def idle(self) -> bool:
        """Nothing that a new listing would not give back: safe to forget."""
        return self.lookup is None and self.measured is None


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
        pending: PendingUploads | None = None,
    ) -> None:
        self._signers = signers
        self._pending = pending or LocalPendingUploads(clock)
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
        return sum(folder.measured is not None for folder in self._folders.values())

    async def admit(self, request: PresignRequest, *, deadline: float | None = None) -> None:
        """Allow the upload `request` presigns, or raise QuotaExceeded / UsageUnavailable.

        `deadline` (event-loop time): UsageDeadline when the folder's listing has not
        come by then; the listing goes on for whoever else waits on it.

        Allowed, it is pending at once: the pending store checks and records it with no
        other upload to the folder in between, so concurrent uploads are counted one
        after another.
        """
        scope = request.scope
        if not scope.folder_quota_bytes or request.upload_cap is None:
            return
        folder = self._folder((scope.name, request.player_id))
        try:
            async with asyncio.timeout_at(deadline):
                measured = await self._measured(folder, request)
        except TimeoutError:
            raise UsageDeadline(
                "the deadline ran out while listing the folder to check its quota"
            ) from None
        if not measured.listing.complete:
            self.stats.refused(scope.name)
            raise QuotaExceeded(
                f"folder {request.prefix} holds more than {MAX_LISTED_OBJECTS} objects, too "
                f"many to measure against scope {scope.name!r}'s quota; delete some to upload"
            )
        decide = admission(measured.listing, measured.began, request)
        try:
            await self._pending.update((scope.name, request.player_id), decide)
        except QuotaExceeded:
            self.stats.refused(scope.name)
            raise

    def _folder(self, name: tuple[str, str]) -> _Folder:
        now = self._clock()
        while self._listed and self._listed[0][0] <= now:
            _, stale = self._listed.popleft()
            if stale.listed_at + self._fresh_seconds <= now:
                stale.measured = None
        folder = self._folders.get(name)
        if folder is not None:
            self._folders.move_to_end(name)
            return folder
        folder = self._folders[name] = _Folder()
        while len(self._folders) > self._folders_kept:
            oldest_name, oldest = next(iter(self._folders.items()))
            if not oldest.idle():
                break  # a lookup in flight or a fresh listing: kept, over the bound for now
            del self._folders[oldest_name]
        return folder

    async def _measured(self, folder: _Folder, request: PresignRequest) -> _Measured:
        if folder.measured is not None and self._clock() - folder.listed_at < self._fresh_seconds:
            return folder.measured
        if folder.lookup is None:
            folder.lookup = asyncio.create_task(self._look_up(folder, request))
            # Its failure reaches every waiter; this keeps it from being reported as
            # never retrieved when every waiter has gone.
            folder.lookup.add_done_callback(_retrieved)
        # Shielded: a caller that gives up does not cancel the lookup others wait on.
        return await asyncio.shield(folder.lookup)

    async def _look_up(self, folder: _Folder, request: PresignRequest) -> _Measured:
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
            started, began = self._clock(), self._pending.now()
            try:
                listing = await self._lister.list_folder(query)
            except DomainError:
                self.stats.looked_up(scope.name, "failed")
                raise
            self.stats.looked_up(scope.name, "ok")
            folder.measured, folder.listed_at = _Measured(listing, began), started
            self._listed.append((started + self._fresh_seconds, folder))
            return folder.measured
        finally:
            folder.lookup = None


def _retrieved(task: asyncio.Task[_Measured]) -> None:
    if not task.cancelled():
        task.exception()
