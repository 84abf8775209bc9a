"""Folder quotas: the upload that would pass the quota is refused; pending uploads count;
lookups are cached, single-flight, rate-bounded; a failed lookup refuses the upload."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.quota_fakes import PREFIX, QUOTA, FakeLister, Seconds, quotas, upload
from support.scopes import make_scope

from satchel_server.errors import QuotaExceeded, UsageDeadline, UsageUnavailable
from satchel_server.presigning.quota import (
    LANDING_ALLOWANCE_SECONDS,
    PENDING_KEPT_SECONDS,
    USAGE_FRESH_SECONDS,
    LocalPendingUploads,
)
from satchel_server.vocabulary import HttpMethod

pytestmark = pytest.mark.asyncio


@settings(deadline=None)  # timing varies on a loaded machine
@given(
    used=st.integers(0, 2 * QUOTA),
    size=st.integers(0, 2 * QUOTA),
    method=st.sampled_from([HttpMethod.PUT, HttpMethod.POST]),
)
async def test_an_upload_is_allowed_exactly_when_the_folder_has_room(
    used: int, size: int, method: HttpMethod
) -> None:
    scope = make_scope(
        folder_quota_bytes=QUOTA, sign_with_access_key=True, post_max_size_cap_bytes=2 * QUOTA
    )
    if method is HttpMethod.POST and size == 0:
        size = 1  # max_size 0 means the scope's default
    gate = quotas(FakeLister({PREFIX + "old.dat": used}), scope=scope)
    request = upload(size=size, method=method, scope=scope)
    if used + size <= QUOTA:
        await gate.admit(request)
        return
    with pytest.raises(QuotaExceeded, match="is at its quota"):
        await gate.admit(request)
    assert gate.stats.refusals == {scope.name: 1}


async def test_allowed_uploads_count_until_a_listing_after_they_could_land() -> None:
    clock, lister = Seconds(), FakeLister()
    gate = quotas(lister, clock)
    await gate.admit(upload("a", 600))
    clock.now += USAGE_FRESH_SECONDS + 1  # a new listing: "a" has not landed yet
    with pytest.raises(QuotaExceeded):
        await gate.admit(upload("b", 500))
    assert len(lister.queries) == 2
    # Listed after "a"'s URL expired and its landing allowance passed: it never landed.
    clock.now += 600 + LANDING_ALLOWANCE_SECONDS
    await gate.admit(upload("b", 500))


async def test_an_upload_that_landed_counts_once() -> None:
    clock, lister = Seconds(), FakeLister()
    gate = quotas(lister, clock)
    await gate.admit(upload("a", 600))
    lister.sizes[PREFIX + "a"] = 600  # it landed
    clock.now += USAGE_FRESH_SECONDS + 1
    await gate.admit(upload("b", 400))  # 600 (listed and pending, once) + 400
    with pytest.raises(QuotaExceeded):
        await gate.admit(upload("c", 1))


async def test_overwriting_a_key_costs_only_what_it_could_grow() -> None:
    gate = quotas(FakeLister({PREFIX + "save": 700, PREFIX + "other": 200}))
    await gate.admit(upload("save", 700))  # the same size again: nothing more
    await gate.admit(upload("save", 800))  # 100 more at most
    with pytest.raises(QuotaExceeded):
        await gate.admit(upload("save", 801))


async def test_a_smaller_upload_to_a_pending_key_keeps_the_larger_one_counted() -> None:
    gate = quotas(FakeLister())
    await gate.admit(upload("save", 600))
    await gate.admit(upload("save", 100))  # the 600-byte URL still works: "save" may hold 600
    with pytest.raises(QuotaExceeded):
        await gate.admit(upload("other", 401))


async def test_a_pending_keys_larger_upload_counts_against_its_next_one() -> None:
    clock, lister = Seconds(), FakeLister()
    gate = quotas(lister, clock)
    await gate.admit(upload("save", 600))
    lister.sizes[PREFIX + "other"] = 500  # landed (a write credential issued before the quota)
    clock.now += USAGE_FRESH_SECONDS + 1
    with pytest.raises(QuotaExceeded, match="could hold 1100 bytes"):
        await gate.admit(upload("save", 100))  # 500 + the 600 "save" may still become


async def test_a_shorter_lived_upload_to_a_pending_key_keeps_the_longer_one_counted() -> None:
    clock, lister = Seconds(), FakeLister()
    gate = quotas(lister, clock)
    await gate.admit(upload("save", 600, expires=1800))
    await gate.admit(upload("save", 600, expires=60))
    # Listed once the short URL could have landed, while the long one still works.
    clock.now += 60 + LANDING_ALLOWANCE_SECONDS + 1
    with pytest.raises(QuotaExceeded):
        await gate.admit(upload("other", 401))


async def test_fifty_concurrent_presigns_never_promise_past_the_quota() -> None:
    lister = FakeLister({PREFIX + "old.dat": 250})
    lister.release = asyncio.Event()
    gate = quotas(lister)
    asked = [gate.admit(upload(f"k{i}", 100)) for i in range(50)]
    results = asyncio.gather(*asked, return_exceptions=True)
    await lister.called.wait()  # the lookup is under way, the burst waiting on it
    lister.release.set()
    outcomes = await results
    allowed = [o for o in outcomes if o is None]
    assert all(o is None or isinstance(o, QuotaExceeded) for o in outcomes)
    assert len(allowed) == 7  # 250 + 7 x 100 <= 1000 < 250 + 8 x 100
    assert len(lister.queries) == 1  # one lookup for the whole burst


async def test_lookups_are_cached_briefly() -> None:
    clock, lister = Seconds(), FakeLister()
    gate = quotas(lister, clock)
    await gate.admit(upload("a", 1))
    clock.now += USAGE_FRESH_SECONDS - 0.1
    await gate.admit(upload("b", 1))
    assert len(lister.queries) == 1
    clock.now += 0.2
    await gate.admit(upload("c", 1))
    assert len(lister.queries) == 2


async def test_lookups_are_bounded_per_scope_by_its_rate() -> None:
    clock, lister = Seconds(), FakeLister()
    gate = quotas(lister, clock)  # 2 lookups/s, burst 2
    await gate.admit(upload(player="p1"))
    await gate.admit(upload(player="p2"))
    with pytest.raises(UsageUnavailable, match="lookup rate") as refused:
        await gate.admit(upload(player="p3"))
    assert refused.value.retry_after_seconds == pytest.approx(0.5)
    assert len(lister.queries) == 2
    clock.now += 0.5
    await gate.admit(upload(player="p3"))
    assert gate.stats.lookups == {("saves", "ok"): 3, ("saves", "rate_limited"): 1}


async def test_a_failed_lookup_refuses_the_upload_and_is_not_remembered() -> None:
    lister = FakeLister()
    lister.fail = UsageUnavailable("OSS answered HTTP 503", 1.0)
    gate = quotas(lister, Seconds())
    with pytest.raises(UsageUnavailable, match="503"):
        await gate.admit(upload())
    lister.fail = None
    await gate.admit(upload())
    assert gate.stats.lookups == {("saves", "failed"): 1, ("saves", "ok"): 1}


async def test_a_folder_too_big_to_list_refuses_uploads() -> None:
    lister = FakeLister({f"{PREFIX}{i}": 0 for i in range(10_001)})
    with pytest.raises(QuotaExceeded, match="too many to measure"):
        await quotas(lister).admit(upload())


@pytest.mark.parametrize("method", [HttpMethod.GET, HttpMethod.HEAD, HttpMethod.DELETE])
async def test_only_uploads_are_checked(method: HttpMethod) -> None:
    lister = FakeLister()
    lister.fail = UsageUnavailable("down")
    await quotas(lister).admit(upload(method=method))
    assert lister.queries == []


async def test_scopes_without_a_quota_never_look_up() -> None:
    scope = make_scope(sign_with_access_key=True)
    lister = FakeLister()
    await quotas(lister, scope=scope).admit(upload(scope=scope))
    assert lister.queries == []


async def test_the_lookup_asks_for_the_players_folder_with_the_scopes_credentials() -> None:
    lister = FakeLister()
    await quotas(lister).admit(upload(player="p7"))
    (query,) = lister.queries
    assert (query.bucket, query.prefix, query.signature) == ("game-saves", "players/p7/", "v4")
    assert query.credentials.access_key_id == "LTAI"
    assert "credentials" not in repr(query)


async def test_folders_with_uploads_that_may_land_are_never_forgotten() -> None:
    clock, lister = Seconds(), FakeLister()
    pending = LocalPendingUploads(clock)
    scope = make_scope(
        folder_quota_bytes=QUOTA, sign_with_access_key=True, folder_lookups_per_second=100
    )
    gate = quotas(lister, clock, scope, folders_kept=1, pending=pending)
    await gate.admit(upload("a", 900, player="p1", scope=scope))
    clock.now += USAGE_FRESH_SECONDS
    await gate.admit(upload(player="p2", scope=scope))
    # p1's stale listing is forgotten (over the bound of one folder); its pending upload is not.
    assert (gate.folders_tracked, gate.listings_held, pending.folders) == (1, 1, 2)
    with pytest.raises(QuotaExceeded):
        await gate.admit(upload("b", 101, player="p1", scope=scope))
    # Once nothing can land any more and no listing in use can need them, they are forgotten.
    clock.now += 600 + LANDING_ALLOWANCE_SECONDS + PENDING_KEPT_SECONDS + 1
    await gate.admit(upload(player="p3", scope=scope))
    assert (gate.folders_tracked, pending.folders) == (1, 1)


async def test_an_upload_that_may_have_landed_after_the_listing_began_still_counts() -> None:
    clock, lister = Seconds(), FakeLister()
    gate = quotas(lister, clock)
    await gate.admit(upload("a", 600))
    lands_by = clock.now + 600 + LANDING_ALLOWANCE_SECONDS
    clock.now = lands_by - 1  # a lookup begins just before "a" could last land...
    lister.release, lister.called = asyncio.Event(), asyncio.Event()
    asked = asyncio.ensure_future(gate.admit(upload("b", 500)))
    await lister.called.wait()
    clock.now = lands_by + 1  # ...and ends after: "a" may have landed unseen by it
    lister.release.set()
    with pytest.raises(QuotaExceeded):
        await asked


async def test_a_listing_older_than_the_entries_kept_is_not_used() -> None:
    clock, lister = Seconds(), FakeLister()
    gate = quotas(lister, clock)
    lister.release = asyncio.Event()
    asked = asyncio.ensure_future(gate.admit(upload("a", 1)))
    await lister.called.wait()
    clock.now += PENDING_KEPT_SECONDS + 1  # a lookup that took longer than any should
    lister.release.set()
    with pytest.raises(UsageUnavailable, match="too old") as refused:
        await asked
    assert refused.value.retry_after_seconds == USAGE_FRESH_SECONDS


async def test_a_listing_past_the_callers_deadline_refuses_and_goes_on_for_others() -> None:
    lister = FakeLister()
    lister.release = asyncio.Event()
    gate = quotas(lister)
    loop = asyncio.get_running_loop()
    waiting = asyncio.ensure_future(gate.admit(upload("b", 1)))  # no deadline: waits
    # The outer timeout only keeps a broken admit from hanging the suite.
    with pytest.raises(UsageDeadline, match="listing the folder"):
        async with asyncio.timeout(30):
            await gate.admit(upload("a", 1), deadline=loop.time())
    lister.release.set()
    await waiting  # the shared listing was not cancelled with the caller that gave up
    assert len(lister.queries) == 1
