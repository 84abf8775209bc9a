"""TokenService at the wire: requests decoded by the servicer, answers reused while valid."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest
import pytest_asyncio
from support.fakes import FakeClock, ScriptedSts
from support.scopes import make_scope

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from satchel_server.api import wire
from satchel_server.api.servicer import TokenService, _PreparedIssue
from satchel_server.config import AccessKey, CacheSettings
from satchel_server.credentials.broker import CredentialBroker
from satchel_server.credentials.budget import TokenBucket
from satchel_server.presigning.presigner import Presigner
from satchel_server.presigning.signing_credentials import ScopeSigner, Signers
from satchel_server.rules.scopes import Permission, TokenRequest


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[grpc.aio.Channel, FakeClock, ScriptedSts]]:
    clock = FakeClock()
    sts = ScriptedSts(clock, delay=0)
    broker = CredentialBroker(sts, CacheSettings(), TokenBucket(50, burst=50), clock)
    scope = make_scope()
    server = grpc.aio.server()
    wire.register(server, TokenService({scope.name: scope}, broker).methods())
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel, clock, sts
    finally:
        await server.stop(None)


@pytest.mark.asyncio
async def test_bytes_that_are_no_request_message_are_invalid_argument_naming_the_request(
    served: Any,
) -> None:
    channel, _, sts = served
    raw = channel.unary_unary("/satchel.v1.TokenService/IssueToken")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(b"\x0a\xff\xff", timeout=5)  # a length that runs past the end
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "request: is not a valid IssueTokenRequest message"
    assert sts.calls == []


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
async def test_a_kept_answer_never_shows_its_secrets(served: Any) -> None:
    channel, _, _ = served
    stub = pb_grpc.TokenServiceStub(channel)
    answer = await stub.IssueToken(pb.IssueTokenRequest(player_id="p1"), timeout=5)
    secret, token = answer.credentials.access_key_secret, answer.credentials.security_token
    request = TokenRequest(make_scope(), "p1", "players/p1/", frozenset({Permission.READ}), 3600)
    kept = _PreparedIssue(request, answer=answer.SerializeToString())
    assert secret not in repr(kept)
    assert token not in repr(kept)


@pytest.mark.asyncio
async def test_the_same_request_encoded_differently_is_served_alike(served: Any) -> None:
    channel, _, sts = served
    raw = channel.unary_unary("/satchel.v1.TokenService/IssueToken")
    plain = pb.IssueTokenRequest(player_id="p1").SerializeToString()
    # A field sent twice: protobuf keeps the last, so these bytes say player "p1" too.
    repeated = pb.IssueTokenRequest(player_id="x").SerializeToString() + plain
    answers = [
        pb.IssueTokenResponse.FromString(await raw(data, timeout=5)) for data in (plain, repeated)
    ]
    assert answers[0] == answers[1]
    assert answers[0].location.prefix == "players/p1/"
    assert len(sts.calls) == 1


@pytest.mark.asyncio
async def test_registration_needs_every_method_of_the_service() -> None:
    methods = TokenService().methods()
    del methods["PresignObject"]
    with pytest.raises(ValueError, match="PresignObject"):
        wire.register(grpc.aio.server(), methods)


@pytest.mark.asyncio
async def test_a_presign_answer_expires_exactly_when_its_url_does() -> None:
    clock = FakeClock()
    scope = make_scope(sign_with_access_key=True)  # a key of its own: no STS to wait for
    signer = ScopeSigner(scope, ScriptedSts(clock), TokenBucket(1), AccessKey("LTAI-k", "secret"))
    presigner = Presigner({scope.name: scope}, Signers({scope.name: signer}), clock)
    server = grpc.aio.server()
    wire.register(server, TokenService({scope.name: scope}, presigner=presigner).methods())
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
