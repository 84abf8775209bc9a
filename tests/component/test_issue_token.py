"""IssueToken end to end: Satchel + emulator on loopback, tokens used by the official SDKs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import alibabacloud_oss_v2 as oss_v2
import grpc
import oss2
import pytest
import pytest_asyncio
from component.emulator_fixtures import emulator, oss2_bucket, v2_client
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from support.stack import Stack, running_stack

from satchel.v1 import token_service_pb2 as pb
from satchel_server.credentials.broker import LIFETIME_SLACK_SECONDS
from satchel_server.emulator.faults import FaultPlan
from satchel_server.emulator.runner import Emulator

__all__ = ["emulator"]

ALL = [pb.PERMISSION_READ, pb.PERMISSION_WRITE, pb.PERMISSION_LIST, pb.PERMISSION_DELETE]


@pytest_asyncio.fixture
async def stack(emulator: Emulator) -> AsyncIterator[Stack]:
    async with running_stack(emulator) as running:
        yield running


async def issue(
    stack: Stack, player: str, permissions: list[int], **kw: Any
) -> pb.IssueTokenResponse:
    request = pb.IssueTokenRequest(player_id=player, permissions=permissions, **kw)
    return await stack.stub.IssueToken(request, timeout=kw.pop("timeout", 10))


def sdk_creds(reply: pb.IssueTokenResponse) -> dict[str, str]:
    return {
        "AccessKeyId": reply.credentials.access_key_id,
        "AccessKeySecret": reply.credentials.access_key_secret,
        "SecurityToken": reply.credentials.security_token,
    }


def operations(bucket: Any, folder: str) -> dict[str, Callable[[], object]]:
    key = f"{folder}save.dat"
    return {
        "write": lambda: bucket.put_object(key, b"slot-1"),
        "read": lambda: bucket.get_object(key).read(),
        "list": lambda: bucket.list_objects(prefix=folder),
        "delete": lambda: bucket.delete_object(key),
    }


def outcome(operation: Callable[[], object]) -> str:
    try:
        operation()
    except oss2.exceptions.OssError as error:
        return error.code
    return "ok"


@pytest.mark.asyncio
async def test_response_carries_credentials_location_and_permissions(stack: Stack) -> None:
    reply = await issue(stack, "p1", [pb.PERMISSION_WRITE, pb.PERMISSION_READ, pb.PERMISSION_READ])
    assert reply.credentials.access_key_id.startswith("STS.")
    assert reply.credentials.access_key_secret
    assert reply.credentials.security_token
    lifetime = reply.credentials.expiration.ToDatetime(UTC) - datetime.now(UTC)
    assert 3500 < lifetime.total_seconds() <= 3600
    assert reply.location.prefix == "players/p1/"
    assert reply.location.bucket == "satchel-dev"
    assert reply.location.endpoint == stack.emulator.oss_url
    assert list(reply.permissions) == [pb.PERMISSION_READ, pb.PERMISSION_WRITE]


@pytest.mark.asyncio
@pytest.mark.parametrize("v4", [False, True], ids=["oss2-v1", "oss2-v4"])
@pytest.mark.parametrize(
    "granted", [["read"], ["write"], ["list"], ["delete"], ["read", "write", "list", "delete"]]
)
async def test_token_does_exactly_what_its_permissions_allow(
    stack: Stack, granted: list[str], v4: bool
) -> None:
    wire = {
        "read": pb.PERMISSION_READ,
        "write": pb.PERMISSION_WRITE,
        "list": pb.PERMISSION_LIST,
        "delete": pb.PERMISSION_DELETE,
    }
    admin = oss2_bucket(stack.emulator)  # the RAM user: seeds the object reads need
    await asyncio.to_thread(admin.put_object, "players/12/save.dat", b"seed")
    reply = await issue(stack, "12", [wire[p] for p in granted])
    bucket = oss2_bucket(stack.emulator, sdk_creds(reply), v4=v4)
    for name, operation in operations(bucket, "players/12/").items():
        expected = "ok" if name in granted else "AccessDenied"
        assert await asyncio.to_thread(outcome, operation) == expected, name


@pytest.mark.asyncio
@pytest.mark.parametrize("folder", ["players/12x/", "players/123/", "players/13/", "", "players/"])
async def test_full_token_is_denied_outside_the_players_folder(stack: Stack, folder: str) -> None:
    reply = await issue(stack, "12", ALL)
    bucket = oss2_bucket(stack.emulator, sdk_creds(reply))
    for name, operation in operations(bucket, folder).items():
        assert await asyncio.to_thread(outcome, operation) == "AccessDenied", (name, folder)


@pytest.mark.asyncio
async def test_listing_a_wider_prefix_is_denied(stack: Stack) -> None:
    reply = await issue(stack, "12", ALL)
    bucket = oss2_bucket(stack.emulator, sdk_creds(reply))
    for prefix in ("players/1", "players/12", ""):
        result = await asyncio.to_thread(outcome, lambda p=prefix: bucket.list_objects(prefix=p))
        assert result == "AccessDenied", prefix


@pytest.mark.asyncio
async def test_token_works_with_alibabacloud_oss_v2(stack: Stack) -> None:
    reply = await issue(stack, "p2", ALL)
    client = v2_client(stack.emulator, sdk_creds(reply))
    key = "players/p2/replay.bin"

    def roundtrip() -> bytes:
        client.put_object(oss_v2.PutObjectRequest(bucket="satchel-dev", key=key, body=b"replay"))
        body = client.get_object(oss_v2.GetObjectRequest(bucket="satchel-dev", key=key)).body
        return body.read()

    assert await asyncio.to_thread(roundtrip) == b"replay"

    def foreign() -> str:
        try:
            client.put_object(
                oss_v2.PutObjectRequest(bucket="satchel-dev", key="players/p3/x", body=b"x")
            )
        except oss_v2.exceptions.OperationError as error:
            return error.unwrap().code
        return "ok"

    assert await asyncio.to_thread(foreign) == "AccessDenied"


@pytest.mark.asyncio
async def test_fifty_concurrent_cold_calls_make_one_assume_role(stack: Stack) -> None:
    before = stack.emulator.counters.assume_role_calls
    first = await asyncio.gather(*(issue(stack, "cold", [pb.PERMISSION_READ]) for _ in range(50)))
    assert stack.emulator.counters.assume_role_calls - before == 1
    assert len({r.credentials.access_key_id for r in first}) == 1
    await asyncio.gather(*(issue(stack, "cold", [pb.PERMISSION_READ]) for _ in range(50)))
    assert stack.emulator.counters.assume_role_calls - before == 1


def bad_request_of(error: grpc.aio.AioRpcError) -> error_details_pb2.BadRequest:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            found = error_details_pb2.BadRequest()
            detail.Unpack(found)
            return found
    raise AssertionError("no BadRequest detail")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"player_id": "12*"}, "player_id"),
        ({"player_id": '},{"Effect":"Allow","Action":"oss:*"'}, "player_id"),
        ({"player_id": "${acs:x}"}, "player_id"),
        ({"player_id": ""}, "player_id"),
        ({"player_id": "x" * 65}, "player_id"),
        ({"player_id": "p1", "scope": "nope"}, "scope"),
        ({"player_id": "p1", "permissions": [9]}, "permissions"),
        ({"player_id": "p1", "permissions": [pb.PERMISSION_UNSPECIFIED]}, "permissions"),
        ({"player_id": "p1", "ttl": {"seconds": 60}}, "ttl"),
        ({"player_id": "p1", "ttl": {"seconds": 7200}}, "ttl"),
    ],
)
async def test_bad_requests_name_the_field_and_never_reach_sts(
    stack: Stack, request_fields: dict[str, Any], field: str
) -> None:
    before = stack.emulator.counters.assume_role_calls
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.stub.IssueToken(pb.IssueTokenRequest(**request_fields), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"{field}: ")
    assert [v.field for v in bad_request_of(caught.value).field_violations] == [field]
    assert stack.emulator.counters.assume_role_calls == before


def retry_delay_of(error: grpc.aio.AioRpcError) -> int | None:
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.seconds
    return None


def our_flights() -> list[asyncio.Task[Any]]:
    return [
        task
        for task in asyncio.all_tasks()
        if "CredentialBroker._fetch" in getattr(task.get_coro(), "__qualname__", "")
    ]


async def flights_left_after(seconds: float) -> list[asyncio.Task[Any]]:
    """The broker's STS flights still running once each has had `seconds` to end."""
    running = our_flights()
    if running:
        _, still = await asyncio.wait(running, timeout=seconds)
        return list(still)
    return []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("plan", "status", "calls"),
    [
        (FaultPlan(throttle=True), grpc.StatusCode.UNAVAILABLE, 3),
        (FaultPlan(status=503), grpc.StatusCode.UNAVAILABLE, 3),
        (FaultPlan(malformed="html", status=502), grpc.StatusCode.UNAVAILABLE, 3),
        (FaultPlan(malformed="json"), grpc.StatusCode.UNAVAILABLE, 1),
        (FaultPlan(malformed="empty"), grpc.StatusCode.UNAVAILABLE, 1),
        (FaultPlan(drop=True), grpc.StatusCode.UNAVAILABLE, 3),
        (FaultPlan(latency_s=30), grpc.StatusCode.DEADLINE_EXCEEDED, 1),
    ],
    ids=["throttled", "503", "html-502", "bad-json", "empty-body", "dropped", "stalled"],
)
async def test_sts_faults_map_to_statuses_within_the_deadline(
    stack: Stack, plan: FaultPlan, status: grpc.StatusCode, calls: int
) -> None:
    stack.emulator.faults.set("sts", plan)
    before = stack.emulator.counters.assume_role_calls
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.stub.IssueToken(pb.IssueTokenRequest(player_id="p1"), timeout=2)
    # UNAVAILABLE comes from the server, so before the client's own deadline ran out.
    assert caught.value.code() == status
    if status == grpc.StatusCode.UNAVAILABLE:
        assert retry_delay_of(caught.value) is not None
    assert stack.emulator.counters.assume_role_calls - before == calls
    assert await flights_left_after(seconds=5) == []


@pytest.mark.asyncio
async def test_one_503_then_success_is_retried_to_ok(stack: Stack) -> None:
    stack.emulator.faults.set("sts", FaultPlan(status=503, count=1))
    reply = await issue(stack, "p1", [pb.PERMISSION_READ])
    assert reply.credentials.access_key_id.startswith("STS.")


@pytest.mark.asyncio
async def test_a_credential_lives_no_longer_than_asked_and_at_least_the_floor(
    stack: Stack,
) -> None:
    """Against STS (emulated): a 900 s ask after a 3600 s one gets a 900 s credential,
    and asks of one lifetime class share one AssumeRole."""
    cache = stack.settings.cache
    calls = stack.emulator.counters.assume_role_calls
    for ttl, minted in ((3600, True), (900, True), (900, False), (959, False), (3600, False)):
        asked_at = datetime.now(UTC)
        reply = await issue(stack, "p1", [pb.PERMISSION_READ], ttl=Duration(seconds=ttl))
        expiration = reply.credentials.expiration.ToDatetime(UTC)
        assert (expiration - asked_at).total_seconds() <= ttl + LIFETIME_SLACK_SECONDS
        floor = max(cache.min_remaining_seconds, cache.min_remaining_share * ttl)
        assert (expiration - datetime.now(UTC)).total_seconds() >= floor
        calls, before = stack.emulator.counters.assume_role_calls, calls
        assert calls == before + minted, (ttl, minted)
