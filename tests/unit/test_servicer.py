"""TokenService registered as generated: typed messages in and out, answers built per call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest
import pytest_asyncio
from google.rpc import code_pb2, error_details_pb2
from support.fakes import FakeClock, ScriptedSts
from support.scopes import make_scope

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from satchel_server.api.servicer import TokenService
from satchel_server.config import AccessKey, CacheSettings
from satchel_server.credentials.broker import CredentialBroker
from satchel_server.credentials.budget import TokenBucket
from satchel_server.presigning.presigner import Presigner
from satchel_server.presigning.signing_credentials import ScopeRefresher, ScopeSigningCredentials


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[grpc.aio.Channel, FakeClock, ScriptedSts]]:
    clock = FakeClock()
    sts = ScriptedSts(clock, delay=0)
    broker = CredentialBroker(sts, CacheSettings(), TokenBucket(50, burst=50), clock)
    scope = make_scope()
    server = grpc.aio.server()
    pb_grpc.add_TokenServiceServicer_to_server(TokenService({scope.name: scope}, broker), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel, clock, sts
    finally:
        await server.stop(None)


@pytest.mark.asyncio
async def test_a_repeated_request_gets_the_credentials_the_broker_holds_now(served: Any) -> None:
    channel, clock, sts = served
    stub = pb_grpc.TokenServiceStub(channel)
    request = pb.IssueTokenRequest(player_id="p1", permissions=[pb.PERMISSION_READ])
    first = await stub.IssueToken(request, timeout=5)
    again = await stub.IssueToken(request, timeout=5)
    assert again == first
    assert len(sts.calls) == 1
    # Too little life left to serve again: the broker mints, and the answer follows it.
    clock.now += timedelta(seconds=3000)
    renewed = await stub.IssueToken(request, timeout=5)
    assert len(sts.calls) == 2
    assert renewed.credentials.access_key_id == "STS.id2"
    assert renewed.credentials.expiration.ToDatetime() > first.credentials.expiration.ToDatetime()
    assert await stub.IssueToken(request, timeout=5) == renewed


@pytest.mark.asyncio
async def test_an_unconfigured_service_answers_failed_precondition_naming_the_rpc() -> None:
    server = grpc.aio.server()
    pb_grpc.add_TokenServiceServicer_to_server(TokenService(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.TokenServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.PresignObject(pb.PresignObjectRequest(player_id="p1"), timeout=5)
    finally:
        await server.stop(None)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.details().startswith("PresignObject cannot be served")


@pytest.mark.asyncio
async def test_a_presign_answer_expires_exactly_when_its_url_does() -> None:
    clock = FakeClock()
    scope = make_scope(sign_with_access_key=True)  # a key of its own: no STS to wait for
    signer = ScopeRefresher(
        scope, ScriptedSts(clock), TokenBucket(1), AccessKey("LTAI-k", "secret")
    )
    presigner = Presigner({scope.name: scope}, ScopeSigningCredentials({scope.name: signer}), clock)
    server = grpc.aio.server()
    service = TokenService({scope.name: scope}, presigner=presigner)
    pb_grpc.add_TokenServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    request = pb.PresignObjectRequest(player_id="p1", key="a.bin", method=pb.HTTP_METHOD_GET)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.TokenServiceStub(channel)
            # The same request, answered in the same second, the next, and an hour on.
            for step in (0, 0, 1, 3600):
                clock.now += timedelta(seconds=step)
                answer = await stub.PresignObject(request, timeout=5)
                query = {k: v[0] for k, v in parse_qs(urlsplit(answer.url).query).items()}
                signed_at = datetime.strptime(query["x-oss-date"], "%Y%m%dT%H%M%SZ")
                dies = signed_at.replace(tzinfo=UTC) + timedelta(
                    seconds=int(query["x-oss-expires"])
                )
                assert signed_at.replace(tzinfo=UTC) == clock.now.replace(microsecond=0)
                assert answer.expiration.ToDatetime(UTC) == dies
                assert (answer.key, answer.location.prefix) == ("players/p1/a.bin", "players/p1/")
                assert answer.method == pb.HTTP_METHOD_GET
    finally:
        await server.stop(None)


@pytest.mark.asyncio
async def test_an_item_the_presigner_cannot_serve_gets_unavailable_with_a_retry_hint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    scope = make_scope()  # signs with STS credentials: none fetched yet (never started)
    signer = ScopeRefresher(scope, ScriptedSts(clock), TokenBucket(1), None)
    presigner = Presigner({scope.name: scope}, ScopeSigningCredentials({scope.name: signer}), clock)
    server = grpc.aio.server()
    service = TokenService({scope.name: scope}, presigner=presigner)
    pb_grpc.add_TokenServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    items = [
        pb.PresignItem(key="a.bin", method=pb.HTTP_METHOD_GET),
        pb.PresignItem(key="../b", method=pb.HTTP_METHOD_GET),
    ]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.TokenServiceStub(channel)
            answer = await stub.PresignObjects(
                pb.PresignObjectsRequest(player_id="p1", items=items), timeout=5
            )
    finally:
        await server.stop(None)
    unavailable, invalid = (result.error for result in answer.results)
    assert (unavailable.code, invalid.code) == (code_pb2.UNAVAILABLE, code_pb2.INVALID_ARGUMENT)
    [detail] = unavailable.details
    retry = error_details_pb2.RetryInfo()
    assert detail.Unpack(retry)
    assert retry.retry_delay.seconds == 1
    # Operators hear of the failure as of a failed call; the refusal only in the audit.
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == ["UpstreamUnavailable: presigning credentials are not ready yet"]
