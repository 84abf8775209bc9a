"""CredentialBroker: cache, single-flight, freshness, LRU, budget, deadlines, isolation."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.fakes import FakeClock, ScriptedSts
from support.scopes import make_scope

from satchel_server.config import CacheSettings
from satchel_server.credentials.broker import (
    LIFETIME_SLACK_SECONDS,
    AssumeRoleResult,
    CredentialBroker,
    NoSharedCache,
)
from satchel_server.credentials.budget import TokenBucket, sts_budget
from satchel_server.errors import PolicyTooLarge, UpstreamDeadline, UpstreamUnavailable
from satchel_server.rules.scopes import TokenRequest
from satchel_server.vocabulary import PlayerPermission

SCOPE = make_scope()


def token_request(
    player: str = "p1", perms=(PlayerPermission.READ,), ttl: int = 3600
) -> TokenRequest:
    return TokenRequest(SCOPE, player, f"players/{player}/", frozenset(perms), ttl)


def make_broker(
    sts: ScriptedSts, clock: FakeClock, max_entries: int = 100, rate: float = 1000
) -> CredentialBroker:
    settings = CacheSettings(max_entries=max_entries, min_remaining_share=0.5)
    return CredentialBroker(sts, settings, TokenBucket(rate), clock)


def soon(seconds: float = 5.0) -> float:
    return asyncio.get_running_loop().time() + seconds


@pytest.mark.asyncio
async def test_fifty_concurrent_cold_misses_make_one_assume_role() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock, delay=0.05)
    broker = make_broker(sts, clock)
    first = await asyncio.gather(
        *(broker.credentials_for(token_request(), deadline=soon()) for _ in range(50))
    )
    assert len(sts.calls) == 1
    assert {issued.credentials.access_key_id for issued in first} == {"STS.id1"}
    second = await asyncio.gather(
        *(broker.credentials_for(token_request(), deadline=soon()) for _ in range(50))
    )
    assert len(sts.calls) == 1
    assert all(issued.from_cache for issued in second)
    assert broker.stats.hits == 50
    assert broker.stats.coalesced == 49


@pytest.mark.asyncio
async def test_the_assume_role_request_carries_the_players_policy_and_name() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock)
    broker = make_broker(sts, clock)
    await broker.credentials_for(token_request("p7", ttl=1800), deadline=soon())
    (call,) = sts.calls
    assert call.role_arn == SCOPE.role_arn
    assert call.role_session_name == "satchel-p7"
    assert call.duration_seconds == 1800
    assert "acs:oss:*:*:game-saves/players/p7/*" in call.policy


@pytest.mark.asyncio
async def test_a_rewritten_player_id_gets_a_session_name_hashed_with_the_brokers_key() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock)
    settings = CacheSettings()
    one = CredentialBroker(sts, settings, TokenBucket(1000), clock, session_name_key=b"k" * 32)
    two = CredentialBroker(sts, settings, TokenBucket(1000), clock, session_name_key=b"k" * 32)
    for broker in (one, two):
        await broker.credentials_for(token_request("a b"), deadline=soon())
        await broker.credentials_for(token_request("a-b"), deadline=soon())
    names = [call.role_session_name for call in sts.calls]
    assert names[0] == names[2] != names[1] == names[3] == "satchel-a-b"


@pytest.mark.asyncio
async def test_cache_is_isolated_per_player_and_permission_set() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock)
    broker = make_broker(sts, clock)
    a = await broker.credentials_for(token_request("12"), deadline=soon())
    b = await broker.credentials_for(token_request("123"), deadline=soon())
    c = await broker.credentials_for(
        token_request("12", perms=(PlayerPermission.READ, PlayerPermission.WRITE)), deadline=soon()
    )
    ids = {x.credentials.access_key_id for x in (a, b, c)}
    assert len(ids) == 3
    assert len(sts.calls) == 3


@pytest.mark.asyncio
async def test_entry_is_served_only_while_it_has_enough_life_left() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock)
    broker = make_broker(sts, clock)
    await broker.credentials_for(token_request(ttl=3600), deadline=soon())
    clock.now += timedelta(seconds=1799)  # 1801 s left: >= 0.5 * 3600 and >= 900
    hit = await broker.credentials_for(token_request(ttl=3600), deadline=soon())
    assert hit.from_cache
    assert hit.credentials.remaining_seconds(clock.now) >= 1800
    clock.now += timedelta(seconds=2)  # 1799 s left: too little for a 3600 s ask
    miss = await broker.credentials_for(token_request(ttl=3600), deadline=soon())
    assert not miss.from_cache
    assert len(sts.calls) == 2


@pytest.mark.asyncio
async def test_lru_evicts_the_least_recently_used_entry() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock)
    broker = make_broker(sts, clock, max_entries=2)
    for player in ("a", "b", "a", "c"):  # "b" is least recently used when "c" arrives
        await broker.credentials_for(token_request(player), deadline=soon())
    assert len(broker) == 2
    assert broker.stats.evictions == 1
    await broker.credentials_for(token_request("a"), deadline=soon())
    assert len(sts.calls) == 3
    await broker.credentials_for(token_request("b"), deadline=soon())
    assert len(sts.calls) == 4


@pytest.mark.asyncio
async def test_spent_budget_fails_fast_with_a_retry_hint() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock)
    broker = CredentialBroker(sts, CacheSettings(), TokenBucket(1.0, burst=1), clock)
    await broker.credentials_for(token_request("a"), deadline=soon())
    with pytest.raises(UpstreamUnavailable) as caught:
        await broker.credentials_for(token_request("b"), deadline=soon(0.2))
    assert 0.5 < caught.value.retry_after_seconds <= 1.0
    assert len(sts.calls) == 1


@pytest.mark.asyncio
async def test_budget_waits_within_the_deadline() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock, delay=0)
    broker = CredentialBroker(sts, CacheSettings(), TokenBucket(20.0, burst=1), clock)
    await asyncio.gather(
        *(broker.credentials_for(token_request(f"p{i}"), deadline=soon(2)) for i in range(5))
    )
    assert len(sts.calls) == 5


@pytest.mark.asyncio
async def test_stalled_sts_ends_at_the_deadline_and_leaves_no_task() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock, delay=30)
    broker = make_broker(sts, clock)
    with pytest.raises(UpstreamDeadline):
        await broker.credentials_for(token_request(), deadline=soon(0.2))
    await asyncio.sleep(0.05)
    assert not broker._flights
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


@pytest.mark.asyncio
async def test_an_upstream_error_reaches_every_waiter_and_is_not_cached() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock)
    sts.fail_with = UpstreamUnavailable("Throttling.User", 1.0)
    broker = make_broker(sts, clock)
    results = await asyncio.gather(
        *(broker.credentials_for(token_request(), deadline=soon()) for _ in range(5)),
        return_exceptions=True,
    )
    assert all(isinstance(r, UpstreamUnavailable) for r in results)
    assert len(sts.calls) == 1
    sts.fail_with = None
    ok = await broker.credentials_for(token_request(), deadline=soon())
    assert not ok.from_cache


@pytest.mark.asyncio
async def test_oversize_policy_fails_before_any_sts_call() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock)
    broker = make_broker(sts, clock)
    tiny = TokenRequest(
        make_scope(policy_max_chars=256), "p1", "players/p1/", frozenset(PlayerPermission), 3600
    )
    with pytest.raises(PolicyTooLarge):
        await broker.credentials_for(tiny, deadline=soon())
    assert sts.calls == []


@pytest.mark.asyncio
async def test_credentials_shorter_than_promised_are_never_returned() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock)
    sts.grant = 900  # a role whose MaxSessionDuration is below what was asked
    broker = make_broker(sts, clock)
    with pytest.raises(UpstreamUnavailable, match="shorter-lived"):
        await broker.credentials_for(token_request(ttl=3600), deadline=soon())


@pytest.mark.asyncio
async def test_asks_of_different_lifetime_classes_never_share_a_credential() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock, delay=0.05)
    broker = make_broker(sts, clock)
    short, long_ = await asyncio.gather(
        broker.credentials_for(token_request(ttl=900), deadline=soon()),
        broker.credentials_for(token_request(ttl=3600), deadline=soon()),
    )
    assert short.credentials.remaining_seconds(clock.now) == 900
    assert long_.credentials.remaining_seconds(clock.now) == 3600
    assert [c.duration_seconds for c in sts.calls] == [900, 3600]


@pytest.mark.asyncio
async def test_a_short_ask_after_a_long_one_gets_no_more_life_than_it_asked() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock)
    broker = make_broker(sts, clock)
    await broker.credentials_for(token_request(ttl=3600), deadline=soon())
    short = await broker.credentials_for(token_request(ttl=900), deadline=soon())
    assert short.credentials.expiration <= clock.now + timedelta(seconds=900)
    assert not short.from_cache


@pytest.mark.asyncio
async def test_asks_within_one_minute_share_one_credential_no_longer_than_the_shortest() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock, delay=0.05)
    broker = make_broker(sts, clock)
    issued = await asyncio.gather(
        *(broker.credentials_for(token_request(ttl=t), deadline=soon()) for t in (959, 900, 930))
    )
    assert [c.duration_seconds for c in sts.calls] == [900]
    assert {i.credentials.access_key_id for i in issued} == {"STS.id1"}


@pytest.mark.asyncio
async def test_the_shortest_ttl_is_served_although_a_fresh_credential_is_a_moment_old() -> None:
    class SlowSts(ScriptedSts):
        async def assume_role(self, request, *, deadline):  # type: ignore[no-untyped-def]
            result = await super().assume_role(request, deadline=deadline)
            self.clock.now += timedelta(seconds=2)  # the call took time: less than 900 s left
            return result

    clock = FakeClock()
    broker = make_broker(SlowSts(clock), clock)
    issued = await broker.credentials_for(token_request(ttl=900), deadline=soon())
    assert 897 < issued.credentials.remaining_seconds(clock.now) < 900
    again = await broker.credentials_for(token_request(ttl=900), deadline=soon())
    assert again.from_cache


class DictShared(NoSharedCache):
    """An in-memory SharedCache: what two brokers in one test share instead of Redis."""

    def __init__(self, entries: dict[tuple[str, ...], AssumeRoleResult]) -> None:
        self.entries = entries
        self.asked = 0

    up: bool | None = True
    revalidate_after: float | None = 10.0

    async def get_or_mint(self, key, *, usable, mint, keep_seconds, deadline, have=None):  # type: ignore[no-untyped-def]
        self.asked += 1
        found = self.entries.get(tuple(key))
        if found is not None and usable(found.credentials):
            return found, False
        result, minted = await super().get_or_mint(
            key, usable=usable, mint=mint, keep_seconds=keep_seconds, deadline=deadline, have=have
        )
        self.entries[tuple(key)] = result
        return result, minted


@pytest.mark.asyncio
async def test_brokers_sharing_a_store_mint_once_and_recheck_after_the_l1_time() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock)
    entries: dict[tuple[str, ...], AssumeRoleResult] = {}
    one_shared, two_shared = DictShared(entries), DictShared(entries)
    settings = CacheSettings(max_entries=100)
    one = CredentialBroker(sts, settings, TokenBucket(1000), clock, shared=one_shared)
    two = CredentialBroker(sts, settings, TokenBucket(1000), clock, shared=two_shared)
    first = await one.credentials_for(token_request(), deadline=soon())
    second = await two.credentials_for(token_request(), deadline=soon())
    assert len(sts.calls) == 1
    assert (first.from_cache, second.from_cache) == (False, True)
    assert second.credentials == first.credentials
    assert two.stats.shared_hits == 1
    assert two.shared_up is True
    await two.credentials_for(token_request(), deadline=soon())  # the L1 answers
    assert two_shared.asked == 1
    clock.now += timedelta(seconds=11)  # past the L1 time: asked again, still no STS call
    again = await two.credentials_for(token_request(), deadline=soon())
    assert again.from_cache
    assert two_shared.asked == 2
    assert len(sts.calls) == 1


@pytest.mark.parametrize(("rate", "burst"), [(90, 10), (50, 50), (100, 1), (10, 10), (0.5, 1)])
def test_the_sts_budget_never_lets_more_than_100_calls_into_one_second(
    rate: float, burst: float
) -> None:
    now = [0.0]
    bucket = sts_budget(rate)
    bucket._clock = lambda: now[0]
    bucket._updated = 0.0
    assert bucket.available == burst
    taken = 0
    while True:
        try:
            wait = bucket.reserve(max_wait_seconds=0.999)  # calls within [0 s, 1 s)
        except UpstreamUnavailable:
            break
        taken += 1
        assert wait < 1.0
    assert taken <= 100


# A step of the property below: ("ask", player, ttl) or ("wait", seconds).
_STEPS = st.one_of(
    st.tuples(st.just("ask"), st.sampled_from(["p1", "p2"]), st.integers(900, 3600)),
    st.tuples(st.just("wait"), st.integers(0, 4000)),
)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(_STEPS, max_size=30),
    seconds=st.integers(0, 840),
    share=st.floats(0, 0.9),
)
def test_every_credential_lives_between_the_floor_and_the_ask_with_one_mint_per_class(
    steps: list[tuple[Any, ...]], seconds: int, share: float
) -> None:
    """Both lifetime bounds hold for any sequence of asks and clock moves, and STS is
    called only when no credential of the ask's class has the floor left."""

    async def scenario() -> None:
        clock = FakeClock()
        sts = ScriptedSts(clock, delay=0)
        cache = CacheSettings(min_remaining_seconds=seconds, min_remaining_share=share)
        broker = CredentialBroker(sts, cache, TokenBucket(1000), clock)
        held: dict[tuple[str, int], datetime] = {}  # the model: expiry per (player, class)
        mints = 0
        for step in steps:
            if step[0] == "wait":
                clock.now += timedelta(seconds=step[1])
                continue
            _, player, ttl = step
            floor = max(seconds, share * ttl)
            lifetime = ttl - ttl % 60
            expiry = held.get((player, lifetime))
            if expiry is None or (expiry - clock.now).total_seconds() < floor:
                held[(player, lifetime)] = clock.now + timedelta(seconds=lifetime)
                mints += 1
            issued = await broker.credentials_for(token_request(player, ttl=ttl), deadline=None)
            left = issued.credentials.remaining_seconds(clock.now)
            assert floor <= left <= ttl + LIFETIME_SLACK_SECONDS
            assert issued.credentials.expiration <= clock.now + timedelta(seconds=ttl)
            assert len(sts.calls) == mints

    asyncio.run(scenario())
