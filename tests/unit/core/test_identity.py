"""Satchel's own identity: refresh ahead, one fetch for many callers, failures, the chain."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from support.fakes import FakeClock

from satchel_server.credentials.identity import (
    REFRESH_AHEAD_SECONDS,
    CredentialChain,
    Identity,
    IdentityError,
    NoIdentity,
    RefreshingIdentity,
    StaticSource,
    refresh_time,
)
from satchel_server.errors import UpstreamUnavailable


class ScriptedSource:
    """Hands out numbered temporary credentials lasting `lifetime`; can be made to fail."""

    name = "scripted"

    def __init__(self, clock: FakeClock, lifetime: float = 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.fetches = 0
        self.failing = False
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def fetch(self) -> Identity:
        self.fetches += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise IdentityError("metadata service said no")
        expiration = self.clock() + timedelta(seconds=self.lifetime)
        return Identity(f"STS.{self.fetches}", "secret", "token", expiration)


def test_refresh_is_due_15_minutes_ahead_or_at_half_life_for_short_credentials() -> None:
    clock = FakeClock()
    now = clock()
    hour = now + timedelta(hours=1)
    assert refresh_time(now, hour) == hour - timedelta(seconds=REFRESH_AHEAD_SECONDS)
    short = now + timedelta(seconds=600)
    assert refresh_time(now, short) == now + timedelta(seconds=300)
    assert refresh_time(now, None) is None


@pytest.mark.asyncio
async def test_credentials_are_reused_until_due_then_fetched_once_for_all_callers() -> None:
    clock = FakeClock()
    source = ScriptedSource(clock)
    identity = RefreshingIdentity(source, clock)
    first = await identity.start()
    clock.now += timedelta(seconds=3600 - REFRESH_AHEAD_SECONDS - 1)
    assert await identity.current() is first
    clock.now += timedelta(seconds=1)
    source.gate, source.entered = asyncio.Event(), asyncio.Event()
    waiting = [asyncio.create_task(identity.current()) for _ in range(5)]
    await source.entered.wait()  # one caller is fetching; the others wait behind it
    source.gate.set()
    got = await asyncio.gather(*waiting)
    assert source.fetches == 2
    assert {g.access_key_id for g in got} == {"STS.2"}


@pytest.mark.asyncio
async def test_a_failed_refresh_keeps_working_credentials_and_waits_before_trying_again() -> None:
    clock = FakeClock()
    source = ScriptedSource(clock)
    identity = RefreshingIdentity(source, clock)
    first = await identity.start()
    clock.now += timedelta(seconds=3000)
    source.failing = True
    assert await identity.current() is first
    assert await identity.current() is first
    assert source.fetches == 2  # the second call is within the pause after a failure
    clock.now += timedelta(seconds=11)
    source.failing = False
    assert (await identity.current()).access_key_id == "STS.3"


@pytest.mark.asyncio
async def test_credentials_that_expire_during_the_pause_after_a_failure_are_never_served() -> None:
    clock = FakeClock()
    source = ScriptedSource(clock)
    identity = RefreshingIdentity(source, clock)
    first = await identity.start()
    clock.now += timedelta(seconds=3595)
    source.failing = True
    assert await identity.current() is first  # 5 s left: still good to sign with
    clock.now += timedelta(seconds=6)  # expired, though the pause has 4 s to run
    source.failing = False
    assert (await identity.current()).access_key_id == "STS.3"


@pytest.mark.asyncio
async def test_expired_credentials_that_cannot_be_refreshed_are_unavailable() -> None:
    clock = FakeClock()
    source = ScriptedSource(clock)
    identity = RefreshingIdentity(source, clock)
    await identity.start()
    clock.now += timedelta(seconds=3601)
    source.failing = True
    with pytest.raises(UpstreamUnavailable) as caught:
        await identity.current()
    assert "scripted" in str(caught.value)
    assert "secret" not in str(caught.value)


@pytest.mark.asyncio
async def test_credentials_already_expired_when_fetched_are_refused() -> None:
    clock = FakeClock()
    source = ScriptedSource(clock, lifetime=-1)
    with pytest.raises(IdentityError, match="already expired"):
        await RefreshingIdentity(source, clock).start()


@pytest.mark.asyncio
async def test_the_chain_keeps_the_first_source_that_yields_and_names_every_failure() -> None:
    clock = FakeClock()
    yielding = ScriptedSource(clock)
    chain = CredentialChain([StaticSource(None), yielding])
    assert (await chain.fetch()).access_key_id == "STS.1"
    assert chain.name == "scripted"
    await chain.fetch()
    assert yielding.fetches == 2
    with pytest.raises(NoIdentity) as caught:
        await CredentialChain([StaticSource(None), StaticSource(None, name="other")]).fetch()
    assert "env: ALIBABA_CLOUD_ACCESS_KEY_ID" in str(caught.value)
    assert "other:" in str(caught.value)


@pytest.mark.asyncio
async def test_only_a_key_without_token_or_expiry_is_long_lived() -> None:
    key = RefreshingIdentity.of_key("LTAI-x", "s")
    assert key.long_lived is None  # not fetched yet
    await key.start()
    assert key.long_lived is not None
    sts_token = RefreshingIdentity(StaticSource(Identity("STS.x", "s", "token")))
    await sts_token.start()
    assert sts_token.long_lived is None
