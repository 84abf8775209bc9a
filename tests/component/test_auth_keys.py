"""Bearer keys end to end: who may ask, what they may ask for, and the audit line of each call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from component.auth_fixtures import (
    EU_KEY,
    EU_OLD_KEY,
    US_KEY,
    audit_lines,
    auth_settings,
    bearer,
    metadata_value,
)
from component.emulator_fixtures import emulator
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.stack import Stack, running_stack

from satchel.v1 import token_service_pb2 as pb
from satchel_server.emulator.runner import Emulator

__all__ = ["emulator"]

UNAUTHENTICATED_DETAILS = "missing or invalid caller credentials"


@pytest_asyncio.fixture
async def stack(emulator: Emulator, tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(emulator, auth_settings(emulator, tmp_path / "audit.jsonl")) as st:
        yield st


def audit_of(stack: Stack) -> list[dict[str, Any]]:
    return audit_lines(Path(stack.settings.audit.output))


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def token_request(player: str = "eu-1", **fields: Any) -> pb.IssueTokenRequest:
    return pb.IssueTokenRequest(player_id=player, **fields)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "metadata",
    [
        (),
        bearer("sat_not_a_key"),
        bearer(EU_KEY.key[:-8] + "00000000"),  # the right key id, a wrong secret
        bearer(EU_OLD_KEY),  # rotated out
        (("authorization", f"Basic {EU_KEY.key}"),),
        bearer(EU_KEY) + bearer(US_KEY),
    ],
    ids=["none", "malformed", "wrong-secret", "rotated-out", "basic", "two-keys"],
)
async def test_missing_or_bad_keys_are_unauthenticated_without_a_hint(
    stack: Stack, metadata: tuple[tuple[str, str], ...]
) -> None:
    before = stack.emulator.counters.assume_role_calls
    error = await refused(stack.stub.IssueToken(token_request(), metadata=metadata, timeout=10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == UNAUTHENTICATED_DETAILS
    assert stack.emulator.counters.assume_role_calls == before
    (line,) = audit_of(stack)
    assert (line["outcome"], line["status"], line["caller"]) == ("denied", "UNAUTHENTICATED", None)
    assert line["reason"]  # for operators: which part was wrong
    assert line["request_id"] == metadata_value(error.trailing_metadata(), "x-request-id")


@pytest.mark.asyncio
async def test_a_valid_key_is_served_and_audited_with_what_was_handed_out(stack: Stack) -> None:
    metadata = (*bearer(EU_KEY), ("x-request-id", "trace-42"))
    call = stack.stub.IssueToken(
        token_request(permissions=[pb.PERMISSION_READ, pb.PERMISSION_WRITE]),
        metadata=metadata,
        timeout=10,
    )
    reply = await call
    assert metadata_value(await call.trailing_metadata(), "x-request-id") == "trace-42"
    (line,) = audit_of(stack)
    assert line["request_id"] == "trace-42"
    assert (line["caller"], line["auth"], line["credential"]) == ("game-eu", "key", EU_KEY.key_id)
    assert (line["scope"], line["player"]) == ("dev", "eu-1")
    assert line["permissions"] == ["read", "write"]
    assert (line["outcome"], line["status"]) == ("allowed", "OK")
    assert line["access_key_id"] == reply.credentials.access_key_id
    assert line["sts_request_id"]
    assert line["expiration"].startswith(
        reply.credentials.expiration.ToDatetime().strftime("%Y-%m-%dT%H:%M:%S")
    )


@pytest.mark.asyncio
async def test_a_request_id_is_generated_when_none_or_a_bad_one_is_sent(stack: Stack) -> None:
    for sent in ((), (("x-request-id", "has spaces"),), (("x-request-id", "x" * 200),)):
        call = stack.stub.IssueToken(token_request(), metadata=(*bearer(EU_KEY), *sent), timeout=10)
        await call
        returned = metadata_value(await call.trailing_metadata(), "x-request-id")
        assert returned is not None
        assert len(returned) == 32
    assert len({line["request_id"] for line in audit_of(stack)}) == 3


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("metadata", "fields", "rule"),
    [
        (bearer(EU_KEY), {"scope": "other"}, "may not use scope 'other'"),
        (bearer(US_KEY), {"scope": "dev", "player_id": "eu-1"}, "may not use scope 'dev'"),
        (bearer(EU_KEY), {"permissions": [pb.PERMISSION_DELETE]}, "may not ask for 'delete'"),
        (bearer(EU_KEY), {"player_id": "us-1"}, "may not act for this player id"),
    ],
    ids=["scope", "other-callers-scope", "permission", "player-pattern"],
)
async def test_issue_token_outside_the_grant_is_permission_denied(
    stack: Stack, metadata: Any, fields: dict[str, Any], rule: str
) -> None:
    request = pb.IssueTokenRequest(**{"player_id": "eu-1", **fields})
    before = stack.emulator.counters.assume_role_calls
    error = await refused(stack.stub.IssueToken(request, metadata=metadata, timeout=10))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert rule in error.details()
    assert stack.emulator.counters.assume_role_calls == before
    (line,) = audit_of(stack)
    assert (line["outcome"], line["status"]) == ("denied", "PERMISSION_DENIED")
    assert rule in line["reason"]
    assert line["access_key_id"] is None


@pytest.mark.asyncio
async def test_presign_outside_the_granted_methods_is_denied_and_inside_is_audited(
    stack: Stack,
) -> None:
    get = pb.PresignObjectRequest(player_id="eu-7", key="save.dat", method=pb.HTTP_METHOD_GET)
    reply = await stack.stub.PresignObject(get, metadata=bearer(EU_KEY), timeout=10)
    delete = pb.PresignObjectRequest(player_id="eu-7", key="save.dat", method=pb.HTTP_METHOD_DELETE)
    error = await refused(stack.stub.PresignObject(delete, metadata=bearer(EU_KEY), timeout=10))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may not presign DELETE" in error.details()
    allowed, denied = audit_of(stack)
    assert (allowed["rpc"], allowed["method"], allowed["key"]) == (
        "PresignObject",
        "GET",
        "players/eu-7/save.dat",
    )
    assert allowed["outcome"] == "allowed"
    assert allowed["expiration"].startswith(
        reply.expiration.ToDatetime().strftime("%Y-%m-%dT%H:%M:%S")
    )
    assert (denied["method"], denied["status"]) == ("DELETE", "PERMISSION_DENIED")


@pytest.mark.asyncio
async def test_invalid_requests_are_still_authenticated_first_and_audited(stack: Stack) -> None:
    bad = token_request(player="eu-1*")
    error = await refused(stack.stub.IssueToken(bad, timeout=10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    error = await refused(stack.stub.IssueToken(bad, metadata=bearer(EU_KEY), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    statuses = [(line["status"], line["outcome"]) for line in audit_of(stack)]
    assert statuses == [("UNAUTHENTICATED", "denied"), ("INVALID_ARGUMENT", "denied")]


@pytest.mark.asyncio
async def test_health_needs_no_credentials(stack: Stack) -> None:
    async with grpc.aio.insecure_channel(stack.server.address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert audit_of(stack) == []
