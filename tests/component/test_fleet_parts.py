"""The fleet's parts on a real Redis: signer turns, lock expiry, the shared budget, fallback."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from component.redis_fixtures import private_redis, redis_server, redis_session, start_redis
from support.fakes import FakeClock, ScriptedSts
from support.redis_server import ANSWER_SECONDS, RedisServer, free_port
from support.scopes import make_scope
from support.tls_certs import make_pki

from satchel_server.config import AccessKey, CacheSecrets, CacheSettings, Settings, StsSettings
from satchel_server.credentials.broker import AssumeRoleRequest, AssumeRoleResult
from satchel_server.errors import UpstreamUnavailable
from satchel_server.fleet.assembly import Fleet, open_fleet
from satchel_server.fleet.crypto import Keyring
from satchel_server.presigning.signing_credentials import ScopeRefresher

__all__ = ["private_redis", "redis_server", "redis_session"]

KEYS = (("k1", bytes(range(32))),)
ACCESS_KEY = AccessKey("LTAI-id", "secret")


def settings_for(url: str, **cache: Any) -> Settings:
    return Settings(
        cache=CacheSettings(**{"url": url, "redis_timeout_seconds": ANSWER_SECONDS, **cache}),
        sts=StsSettings(budget_per_second=10.0),
        cache_secrets=CacheSecrets(KEYS),
    )


@asynccontextmanager
async def fleets(
    count: int, url: str, clock: FakeClock, **cache: Any
) -> AsyncIterator[list[Fleet]]:
    """`count` replicas' worth of shared cache and budget, each with its own Redis client."""
    async with AsyncExitStack() as stack:
        built = [open_fleet(settings_for(url, **cache), clock) for _ in range(count)]
        for fleet in built:
            stack.push_async_callback(fleet.close)
        yield built


@pytest.mark.asyncio
async def test_the_fleet_makes_one_scope_level_assume_role_per_refresh(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock)
    scope = make_scope()
    async with fleets(3, redis_server.url, clock) as replicas:
        signers = [
            ScopeRefresher(scope, sts, f.budget, ACCESS_KEY, clock, shared=f.shared)
            for f in replicas
        ]
        await asyncio.gather(*(s.refresh() for s in signers))
        assert len(sts.calls) == 1
        assert len({s.current.credentials.access_key_id for s in signers if s.current}) == 1
        # Every replica's credentials fall due at once; the fleet still refreshes once.
        clock.now += timedelta(seconds=signers[0].refresh_due_in() + 1)
        assert all(s.refresh_due_in() <= 0 for s in signers)
        await asyncio.gather(*(s.refresh() for s in signers))
        assert len(sts.calls) == 2
        assert all(s.refresh_due_in() > 0 for s in signers)
        assert len({s.current.credentials.access_key_id for s in signers if s.current}) == 1


@pytest.mark.asyncio
async def test_a_dead_lock_holder_releases_by_expiry(redis_server: RedisServer) -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock)
    key = ("player", "saves", "p1", "read", "digest")
    async with fleets(1, redis_server.url, clock) as (fleet,):
        # A replica took the lock and died: its lock lives on for 300 ms.
        name = Keyring(KEYS).name(key)
        redis_server.client().set(f"satchel:lock:{name}", "dead-owner", px=300)

        loop = asyncio.get_running_loop()
        result, minted = await fetch(fleet, sts, key, deadline=loop.time() + 10)
        assert minted
        assert len(sts.calls) == 1
        assert redis_server.client().get(f"satchel:lock:{name}") is None  # released after
        again, minted = await fetch(fleet, sts, key)
        assert (again, minted) == (result, False)


@pytest.mark.asyncio
async def test_a_live_holder_keeps_its_lock_past_the_ttl(redis_server: RedisServer) -> None:
    """A mint that waits on the budget longer than the lock's TTL is still the only one."""
    clock = FakeClock()
    sts = ScriptedSts(clock, delay=2.5)  # longer than the 1 s lock
    key = ("player", "saves", "p2", "read", "digest")
    async with fleets(2, redis_server.url, clock, lock_ttl_seconds=1.0) as (first, second):
        loop = asyncio.get_running_loop()
        holder = asyncio.create_task(fetch(first, sts, key, deadline=loop.time() + 10))
        # Minting means the first replica holds the lock.
        await asyncio.wait_for(sts.called.wait(), timeout=5)
        waiter = await fetch(second, sts, key, deadline=loop.time() + 10)
        minted = await holder
    assert len(sts.calls) == 1
    assert minted == (waiter[0], True)
    assert waiter[1] is False


async def fetch(
    fleet: Fleet, sts: ScriptedSts, key: Sequence[str] = ("k",), deadline: float | None = None
) -> tuple[AssumeRoleResult, bool]:
    """What the broker does on a miss: any usable entry, else one AssumeRole."""

    async def mint() -> AssumeRoleResult:
        request = AssumeRoleRequest("acs:ram::1:role/r", "satchel-p1", "{}", 3600)
        return await sts.assume_role(request, deadline=None)

    return await fleet.shared.get_or_mint(
        key, usable=lambda c: True, mint=mint, keep_seconds=300, deadline=deadline
    )


@pytest.mark.asyncio
async def test_replicas_draw_from_one_budget(redis_server: RedisServer) -> None:
    clock = FakeClock()
    # 10/s for the fleet: a burst of one token, then one every 100 ms.
    async with fleets(2, redis_server.url, clock) as (one, two):
        await one.budget.acquire(0)
        with pytest.raises(UpstreamUnavailable) as caught:
            await two.budget.acquire(0)
        assert 0 < caught.value.retry_after_seconds <= 0.1
        await two.budget.acquire(1.0)  # reserved: waits for the next token


@pytest.mark.asyncio
async def test_unreachable_redis_falls_back_to_local_state_logging_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="satchel_server.fleet.link")
    clock = FakeClock()
    sts = ScriptedSts(clock)
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with fleets(1, url, clock, expected_replicas=5) as (fleet,):
        for _ in range(3):
            _, minted = await fetch(fleet, sts)
            assert minted
        await fleet.budget.acquire(0)  # the local budget: 10/s over 5 replicas = 2/s
        assert fleet.shared.up is False
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "local budget of 2 AssumeRole/s" in warnings[0]


@pytest.mark.asyncio
async def test_a_stalled_redis_costs_one_short_timeout_then_local_state(
    private_redis: RedisServer,
) -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock)

    async with fleets(1, private_redis.url, clock, redis_timeout_seconds=0.05) as (fleet,):
        await fleet.budget.acquire(0)  # connected and answering
        assert fleet.shared.up is True
        private_redis.pause()
        try:
            _, minted = await fetch(fleet, sts)
            assert minted
            assert fleet.shared.up is False
        finally:
            private_redis.resume()


@pytest.mark.asyncio
async def test_rediss_with_a_password_shares_entries(tmp_path: Path) -> None:
    files = make_pki().write(tmp_path)
    tls = (files["ca_cert"], files["server_cert"], files["server_key"])
    server = start_redis(tmp_path, tls=tls, password="redis-pass")
    try:
        clock = FakeClock()
        sts = ScriptedSts(clock)
        settings = settings_for(server.url)
        settings = dataclasses.replace(settings, cache_secrets=CacheSecrets(KEYS, "redis-pass"))
        one, two = open_fleet(settings, clock), open_fleet(settings, clock)
        try:
            assert (await fetch(one, sts))[1]
            assert not (await fetch(two, sts))[1]  # over TLS, from the first replica
            assert len(sts.calls) == 1
            assert one.shared.up is True
        finally:
            await one.close()
            await two.close()
    finally:
        server.stop()
