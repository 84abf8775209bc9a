"""Several Satchel replicas sharing one real Redis and one emulator (issue 12).

Each replica is a complete `wired_server` stack in this process, with its own
aiohttp session, STS client, broker, signers and Redis client: they share only
Redis and the emulator, as separate machines would.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from component.emulator_fixtures import emulator
from component.redis_fixtures import private_redis, redis_server, redis_session
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from support.processes import ServerProcess
from support.redis_server import ANSWER_SECONDS, RedisServer
from support.stack import Stack, running_stack

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from satchel_server.config import (
    ACCESS_KEY_ID_ENV,
    ACCESS_KEY_SECRET_ENV,
    CACHE_KEYS_ENV,
    CacheSecrets,
    Settings,
)
from satchel_server.emulator import accounts as dev_account
from satchel_server.emulator.runner import Emulator
from satchel_server.fleet.shared_budget import fleet_capacity
from satchel_server.wiring import dev_settings

__all__ = ["emulator", "private_redis", "redis_server", "redis_session"]

CACHE_KEY = bytes(range(32))
LINK_LOG = "satchel_server.fleet.link"


def fleet_settings(emulator: Emulator, redis: RedisServer, **cache: Any) -> Settings:
    base = dev_settings("127.0.0.1:0", emulator)
    return dataclasses.replace(
        base,
        cache=dataclasses.replace(
            base.cache, **{"url": redis.url, "redis_timeout_seconds": ANSWER_SECONDS, **cache}
        ),
        cache_secrets=CacheSecrets((("k1", CACHE_KEY),)),
    )


@asynccontextmanager
async def replicas(
    count: int, emulator: Emulator, settings: Settings
) -> AsyncIterator[list[Stack]]:
    async with AsyncExitStack() as stacks:
        yield [
            await stacks.enter_async_context(running_stack(emulator, settings))
            for _ in range(count)
        ]


async def issue(stack: Stack, player: str, deadline_seconds: float = 10) -> pb.IssueTokenResponse:
    request = pb.IssueTokenRequest(player_id=player, permissions=[pb.PERMISSION_READ])
    return await stack.stub.IssueToken(request, timeout=deadline_seconds)


def assert_good_token(reply: pb.IssueTokenResponse, player: str) -> None:
    assert reply.credentials.access_key_id.startswith("STS.")
    assert reply.credentials.access_key_secret
    assert reply.credentials.security_token
    assert reply.location.prefix == f"players/{player}/"
    left = reply.credentials.expiration.ToDatetime(UTC) - datetime.now(UTC)
    assert left.total_seconds() > 1800


def serve_config(emulator: Emulator, redis: RedisServer) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
grace_seconds = 1
[log]
format = "text"
[sts]
endpoint = "{emulator.sts_url}"
[cache]
url = "{redis.url}"
# Generous: three servers, the emulator and 300 calls share two cores here, and a
# starved process must not pass for a slow Redis.
redis_timeout_seconds = 1.0
[limits]
player_rate_per_second = 0
[scopes.dev]
bucket = "{dev_account.DEV_BUCKET}"
region = "{dev_account.DEV_REGION}"
role_arn = "{dev_account.DEV_ROLE_ARN}"
endpoint = "{emulator.oss_url}"
addressing = "path"
"""


@pytest.mark.asyncio
async def test_three_server_processes_make_one_assume_role_per_cold_player(
    emulator: Emulator,
    redis_server: RedisServer,
    spawn: Callable[..., ServerProcess],
    tmp_path: Path,
) -> None:
    config = tmp_path / "satchel.toml"
    config.write_text(serve_config(emulator, redis_server))
    env = {
        ACCESS_KEY_ID_ENV: dev_account.DEV_ACCESS_KEY_ID,
        ACCESS_KEY_SECRET_ENV: dev_account.DEV_ACCESS_KEY_SECRET,
        CACHE_KEYS_ENV: "k1:" + base64.b64encode(CACHE_KEY).decode(),
    }
    procs = [
        spawn("-m", "satchel_server", "serve", "--config", str(config), env=env) for _ in range(3)
    ]
    # Off the event loop: the emulator serving their start-up calls runs on it.
    addresses = [await asyncio.to_thread(proc.wait_listening) for proc in procs]
    # One scope-level (presigning) credential for the whole fleet.
    assert emulator.counters.assume_role_calls == 1
    players = [f"fleet-player-{n:03d}" for n in range(30)]
    async with AsyncExitStack() as channels:
        stubs = [
            pb_grpc.TokenServiceStub(
                await channels.enter_async_context(grpc.aio.insecure_channel(address))
            )
            for address in addresses
        ]

        async def call(i: int) -> pb.IssueTokenResponse:
            # Call i goes to server (i // 30) % 3: every player reaches all three.
            request = pb.IssueTokenRequest(
                player_id=players[i % 30], permissions=[pb.PERMISSION_READ]
            )
            return await stubs[(i // 30) % 3].IssueToken(request, timeout=20)

        replies = await asyncio.gather(*(call(i) for i in range(300)))
        assert emulator.counters.assume_role_calls == 1 + 30
        assert emulator.counters.assume_role_issued == 1 + 30
        key_ids: dict[str, set[str]] = {}
        for i, reply in enumerate(replies):
            assert_good_token(reply, players[i % 30])
            key_ids.setdefault(players[i % 30], set()).add(reply.credentials.access_key_id)
        assert all(len(ids) == 1 for ids in key_ids.values())  # one credential per player

        for stub in stubs:
            request = pb.PresignObjectRequest(
                player_id=players[0], key="saves/slot1.dat", method=pb.HTTP_METHOD_GET
            )
            assert (await stub.PresignObject(request, timeout=20)).url
        assert emulator.counters.assume_role_calls == 1 + 30  # presigning never calls STS
    secrets = set(players)
    for reply in replies:
        credentials = reply.credentials
        secrets |= {
            credentials.access_key_id,
            credentials.access_key_secret,
            credentials.security_token,
        }
    assert_nothing_in_clear(redis_server.dump(), secrets)
    for proc in procs:
        proc.terminate()
    assert [await asyncio.to_thread(proc.wait) for proc in procs] == [0, 0, 0]


def status_of(error: grpc.aio.AioRpcError) -> str:
    if error.code() == grpc.StatusCode.UNAVAILABLE:
        status = rpc_status.from_call(error)
        for detail in status.details if status else []:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                return "UNAVAILABLE+RetryInfo"
    return error.code().name


@pytest.mark.asyncio
async def test_four_replicas_stay_inside_the_fleet_budget(
    emulator: Emulator, redis_server: RedisServer
) -> None:
    # The emulator throttles at 100/s per account (its default), the fleet budget is 90/s.
    settings = fleet_settings(emulator, redis_server)
    rate = settings.sts.budget_per_second
    async with replicas(4, emulator, settings) as fleet:
        issued_before = emulator.counters.assume_role_issued
        started = time.monotonic()

        async def outcome(n: int) -> str:
            try:
                await issue(fleet[n % 4], f"cold-player-{n:04d}", deadline_seconds=2.5)
            except grpc.aio.AioRpcError as error:
                return status_of(error)
            return "OK"

        outcomes = await asyncio.gather(*(outcome(n) for n in range(300)))
        elapsed = time.monotonic() - started
    issued = emulator.counters.assume_role_issued - issued_before
    # A bucket of capacity C refilled at r/s grants at most C + r*t in t seconds
    # (+1: the bucket runs on Redis's clock, the test on its own).
    assert issued <= fleet_capacity(rate) + rate * elapsed + 1
    # Four budgets of 90/s would have let every one of the 300 through at once.
    assert set(outcomes) <= {"OK", "UNAVAILABLE+RetryInfo", "DEADLINE_EXCEEDED"}, outcomes
    assert "OK" in outcomes


def assert_nothing_in_clear(dump: list[tuple[bytes, bytes]], secrets: set[str]) -> None:
    assert dump
    for key, value in dump:
        for secret in secrets:
            assert secret.encode() not in key, "a secret or player id in a Redis key"
            assert secret.encode() not in value, "a secret or player id in a Redis value"


@pytest.mark.asyncio
async def test_redis_down_is_not_an_outage_and_shared_mode_returns(
    emulator: Emulator, private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LINK_LOG)
    # l1 0: every request asks Redis, so the outage is met at once (a stopped Redis
    # refuses at once, whatever the timeout).
    settings = fleet_settings(emulator, private_redis, l1_ttl_seconds=0.0)
    seen: set[str] = set()

    async def check(replica: Stack, player: str) -> None:
        reply = await issue(replica, player)
        assert_good_token(reply, player)
        seen.update(
            {
                player,
                reply.credentials.access_key_id,
                reply.credentials.access_key_secret,
                reply.credentials.security_token,
            }
        )

    async with replicas(2, emulator, settings) as (one, two):
        warm = [f"warm-player-{n:02d}" for n in range(6)]
        for player in warm:
            await check(one, player)
            await check(two, player)
        assert emulator.counters.assume_role_issued == 1 + len(warm)
        assert_nothing_in_clear(private_redis.dump(), seen)

        private_redis.stop()
        cold = [f"cold-player-{n:02d}" for n in range(4)]
        for player in [*warm, *cold, *warm, *cold]:  # twice: the second from local state
            await check(one, player)
            await check(two, player)
        down = [r for r in caplog.records if r.name == LINK_LOG and "unreachable" in r.message]
        assert len(down) == 2  # once per replica, however many requests met the outage

        private_redis.start()
        deadline = time.monotonic() + 20
        while sum("answers again" in r.message for r in caplog.records) < 2:
            assert time.monotonic() < deadline, "the replicas did not return to Redis"
            await check(one, warm[0])
            await check(two, warm[0])
            await asyncio.sleep(0.2)
        before = emulator.counters.assume_role_issued
        late = [f"late-player-{n:02d}" for n in range(4)]
        for player in late:
            await check(one, player)
            await check(two, player)  # shared again: the second replica reuses the first's
        assert emulator.counters.assume_role_issued == before + len(late)
        assert_nothing_in_clear(private_redis.dump(), seen)


@pytest.mark.asyncio
async def test_fifty_presigns_across_two_replicas_keep_a_folder_within_its_quota(
    emulator: Emulator, redis_server: RedisServer
) -> None:
    settings = fleet_settings(emulator, redis_server)
    scope = dataclasses.replace(
        settings.scopes["dev"], folder_quota_bytes=1000, default_permissions=("read", "list")
    )
    settings = dataclasses.replace(settings, scopes={"dev": scope})

    async def presign(stack: Stack, key: str) -> str:
        request = pb.PresignObjectRequest(
            player_id="quota-player", key=key, method=pb.HTTP_METHOD_PUT, content_length=100
        )
        try:
            await stack.stub.PresignObject(request, timeout=10)
        except grpc.aio.AioRpcError as error:
            return status_of(error)
        return "OK"

    async with replicas(2, emulator, settings) as fleet:
        outcomes = await asyncio.gather(*(presign(fleet[i % 2], f"k{i}") for i in range(50)))
    # 10 x 100 fits 1000 (the folder is empty); each replica alone would have allowed 10.
    assert sorted(outcomes) == ["OK"] * 10 + ["RESOURCE_EXHAUSTED"] * 40
