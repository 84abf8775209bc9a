"""Folder quotas across replicas sharing one real Redis: the overshoot bound is the fleet's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
from component.redis_fixtures import private_redis, redis_server, redis_session
from redis.asyncio import Redis
from support.fakes import FakeClock
from support.quota_fakes import PREFIX, FakeLister, Seconds, quotas, upload
from support.redis_server import ANSWER_SECONDS, RedisServer

from satchel_server.config import CacheSecrets, CacheSettings, Settings
from satchel_server.errors import QuotaExceeded, UsageUnavailable
from satchel_server.fleet.assembly import open_fleet
from satchel_server.fleet.crypto import Keyring
from satchel_server.fleet.link import PROBE_SECONDS, RedisLink
from satchel_server.fleet.pending_uploads import (
    EXPIRY_MARGIN_SECONDS,
    NAME_LABEL,
    RedisPendingUploads,
)
from satchel_server.presigning.quota import (
    LANDING_ALLOWANCE_SECONDS,
    PENDING_KEPT_SECONDS,
    USAGE_FRESH_SECONDS,
    FolderQuotas,
    Pending,
    PendingEntries,
)

__all__ = ["private_redis", "redis_server", "redis_session"]

pytestmark = pytest.mark.asyncio
KEYS = (("k1", bytes(range(32))),)
PREFIX_IN_REDIS = "satchel:"


@asynccontextmanager
async def replicas(
    count: int,
    redis: RedisServer,
    clock: Seconds,
    link_clock: Seconds | None = None,
    listers: list[FakeLister] | None = None,
) -> AsyncIterator[list[FolderQuotas]]:
    """`count` replicas' quotas, each with its own Redis client, on one injected clock."""
    listers = listers or [FakeLister() for _ in range(count)]
    async with AsyncExitStack() as stack:
        built = []
        for lister in listers:
            link = RedisLink(
                Redis.from_url(redis.url), ANSWER_SECONDS, "local", clock=link_clock or Seconds()
            )
            stack.push_async_callback(link.close)
            pending = RedisPendingUploads(
                link, Keyring(KEYS), key_prefix=PREFIX_IN_REDIS, clock=clock
            )
            built.append(quotas(lister, clock, pending=pending))
        yield built


def outcome_counts(outcomes: list[BaseException | None]) -> tuple[int, int]:
    assert all(o is None or isinstance(o, QuotaExceeded) for o in outcomes), outcomes
    allowed = sum(o is None for o in outcomes)
    return allowed, len(outcomes) - allowed


async def test_fifty_concurrent_presigns_across_three_replicas_keep_the_bound(
    redis_server: RedisServer,
) -> None:
    # Built as `serve` builds them: the fleet's pending uploads come from open_fleet.
    settings = Settings(
        cache=CacheSettings(url=redis_server.url, redis_timeout_seconds=ANSWER_SECONDS),
        cache_secrets=CacheSecrets(KEYS),
    )
    lister = FakeLister({PREFIX + "old.dat": 250})
    lister.release = asyncio.Event()
    async with AsyncExitStack() as stack:
        fleets = [open_fleet(settings, FakeClock()) for _ in range(3)]
        for fleet in fleets:
            stack.push_async_callback(fleet.close)
        gates = [quotas(lister, pending=fleet.pending_uploads) for fleet in fleets]
        asked = [gates[i % 3].admit(upload(f"k{i}", 100)) for i in range(50)]
        results = asyncio.gather(*asked, return_exceptions=True)
        await lister.until_queried(3)  # every replica is waiting on its lookup
        lister.release.set()
        outcomes = await results
    # 250 + 7 x 100 <= 1000 < 250 + 8 x 100: the same bound as one replica's.
    assert outcome_counts(outcomes) == (7, 43)
    assert len(lister.queries) == 3  # one lookup per replica
    assert sum(sum(gate.stats.refusals.values()) for gate in gates) == 43


async def test_an_upload_one_replica_allowed_counts_on_another_until_it_could_land(
    redis_server: RedisServer,
) -> None:
    clock = Seconds()
    async with replicas(2, redis_server, clock) as (first, second):
        await first.admit(upload("a", 600))
        with pytest.raises(QuotaExceeded):
            await second.admit(upload("b", 500))
        # Redis drops the folder's entry by itself, once no listing can need it.
        (name,) = redis_server.client().keys("*")
        ttl = redis_server.client().pttl(name)
        kept = 600 + LANDING_ALLOWANCE_SECONDS + PENDING_KEPT_SECONDS + EXPIRY_MARGIN_SECONDS
        # Set with the whole of it (the injected clock stands still; real time passes a
        # little between the write and this read, never half a minute).
        assert (kept - 30) * 1000 < ttl <= kept * 1000
        # A listing begun after "a"'s URL expired and its landing allowance passed: it
        # never landed, and the entry in Redis (still there in real time) no longer counts.
        clock.now += 600 + LANDING_ALLOWANCE_SECONDS + USAGE_FRESH_SECONDS
        await second.admit(upload("b", 500))
        await first.admit(upload("c", 500))
        with pytest.raises(QuotaExceeded):
            await first.admit(upload("d", 1))


async def test_a_newer_listing_on_one_replica_keeps_what_an_older_one_needs(
    redis_server: RedisServer,
) -> None:
    clock, slow, fast = Seconds(), FakeLister(), FakeLister()
    async with replicas(2, redis_server, clock, listers=[slow, fast]) as (older, newer):
        await older.admit(upload("a", 600))
        lands_by = clock.now + 600 + LANDING_ALLOWANCE_SECONDS
        clock.now = lands_by - 1
        # One replica's lookup begins just before "a" could last land, and waits...
        slow.release, slow.called = asyncio.Event(), asyncio.Event()
        asked = asyncio.ensure_future(older.admit(upload("b", 500)))
        await slow.called.wait()
        # ...while "a" lands, and another replica lists it and allows a small upload.
        clock.now = lands_by + 1
        fast.sizes[PREFIX + "a"] = 600
        await newer.admit(upload("c", 10))
        slow.release.set()
        # "a" is not in the older listing, so it must still count on top of it.
        with pytest.raises(QuotaExceeded):
            await asked


async def test_overwriting_a_key_another_replica_allowed_costs_only_its_growth(
    redis_server: RedisServer,
) -> None:
    clock = Seconds()
    async with replicas(2, redis_server, clock) as (first, second):
        await first.admit(upload("save", 700))
        await second.admit(upload("save", 700))  # the same key again: nothing more
        await second.admit(upload("other", 300))
        with pytest.raises(QuotaExceeded):
            await first.admit(upload("save", 701))


async def test_redis_down_refuses_uploads_with_a_retry_hint_until_it_answers(
    private_redis: RedisServer,
) -> None:
    clock, link_clock = Seconds(), Seconds()
    async with replicas(1, private_redis, clock, link_clock) as (gate,):
        await gate.admit(upload("a", 600))
        private_redis.stop()
        clock.now += USAGE_FRESH_SECONDS  # a listing of its own would not do either
        with pytest.raises(UsageUnavailable, match="not waived") as refused:
            await gate.admit(upload("b", 100))
        assert refused.value.retry_after_seconds == PROBE_SECONDS
        assert gate.stats.refusals == {}  # not a quota refusal: the quota was not checked
        private_redis.start()
        with pytest.raises(UsageUnavailable):  # no probe due yet: refused without a call
            await gate.admit(upload("b", 100))
        link_clock.now += PROBE_SECONDS
        # Redis lost its entries with its restart: "a" (600) no longer counts.
        await gate.admit(upload("b", 1000))


async def test_player_ids_and_keys_never_reach_redis_in_clear(redis_server: RedisServer) -> None:
    clock = Seconds()
    players = ["player-3f9a7c", "player-b81d44"]
    async with replicas(2, redis_server, clock) as gates:
        for player, gate in zip(players, gates, strict=True):
            await gate.admit(upload("saves/slot-q7.dat", 10, player=player))
    client = redis_server.client()
    names = list(client.scan_iter("*"))
    assert len(names) == 2
    for name in names:
        assert name.startswith(b"satchel:pending:")
        value = client.get(name)
        assert value is not None
        for secret in [*players, "slot-q7"]:
            assert secret.encode() not in name
            assert secret.encode() not in value


async def test_entries_this_fleet_cannot_open_refuse_uploads(redis_server: RedisServer) -> None:
    clock = Seconds()
    name = Keyring(KEYS).name([NAME_LABEL, "saves", "p1"])
    redis_server.client().set(f"{PREFIX_IN_REDIS}pending:{name}", b"\x01\x02k9garbage")
    async with replicas(1, redis_server, clock) as (gate,):
        with pytest.raises(UsageUnavailable, match="cannot be opened"):
            await gate.admit(upload())


async def test_an_update_that_always_loses_the_race_gives_up(redis_server: RedisServer) -> None:
    keyring = Keyring(KEYS)
    name = keyring.name([NAME_LABEL, "saves", "p1"])
    redis_key = f"{PREFIX_IN_REDIS}pending:{name}"
    other = redis_server.client()
    attempts = 0

    def decide_while_another_replica_writes(now: float, entries: PendingEntries) -> dict:
        nonlocal attempts
        attempts += 1
        other.set(redis_key, keyring.seal(name, b"{}"))  # another replica went first
        return {"players/p1/a": Pending(1, now + 60)}

    link = RedisLink(Redis.from_url(redis_server.url), ANSWER_SECONDS, "local")
    try:
        store = RedisPendingUploads(link, keyring, key_prefix=PREFIX_IN_REDIS)
        with pytest.raises(UsageUnavailable, match="at once") as refused:
            await store.update(("saves", "p1"), decide_while_another_replica_writes)
    finally:
        await link.close()
    assert refused.value.retry_after_seconds > 0
    assert attempts > 1


async def test_a_folder_left_with_no_entries_is_deleted(redis_server: RedisServer) -> None:
    link = RedisLink(Redis.from_url(redis_server.url), ANSWER_SECONDS, "local")
    try:
        store = RedisPendingUploads(link, Keyring(KEYS), key_prefix=PREFIX_IN_REDIS)
        await store.update(("saves", "p1"), lambda now, _: {"k": Pending(1, now + 60)})
        assert redis_server.client().dbsize() == 1
        await store.update(("saves", "p1"), lambda now, _: {})
        assert redis_server.client().dbsize() == 0
    finally:
        await link.close()
