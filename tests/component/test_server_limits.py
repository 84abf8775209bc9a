"""Server limits and health: concurrency cap, deadline cap, readiness, a health-only port."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from satchel_server.api.pipeline import ServicerContext
from satchel_server.api.server import _channel_options, build_server
from satchel_server.api.servicer import TokenService, deadline_of
from satchel_server.config import ServerSettings

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def status_at(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        return reply.status


class _HeldIssueToken(TokenService):
    """IssueToken that says when it is in flight, and answers only once released."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = asyncio.Event()
        self.release = asyncio.Event()

    async def IssueToken(
        self, request: pb.IssueTokenRequest, context: ServicerContext
    ) -> pb.IssueTokenResponse:
        self.in_flight.set()
        await self.release.wait()
        return pb.IssueTokenResponse()


@pytest.mark.asyncio
async def test_calls_beyond_the_concurrency_cap_are_refused_at_once() -> None:
    held = _HeldIssueToken()
    built = build_server(ServerSettings(listen="127.0.0.1:0", max_concurrent_rpcs=1), held)
    await built.start()
    try:
        async with grpc.aio.insecure_channel(built.address) as channel:
            stub = pb_grpc.TokenServiceStub(channel)
            first = asyncio.ensure_future(stub.IssueToken(pb.IssueTokenRequest(player_id="a")))
            await asyncio.wait_for(held.in_flight.wait(), timeout=5)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.IssueToken(pb.IssueTokenRequest(player_id="b"), timeout=5)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            held.release.set()
            await first  # the admitted call still completes
    finally:
        await built.server.stop(None)


@pytest.mark.asyncio
async def test_a_missing_or_long_deadline_is_capped() -> None:
    loop = asyncio.get_running_loop()
    for remaining, expected in ((None, 30.0), (500.0, 30.0), (2.0, 2.0)):
        context = SimpleNamespace(time_remaining=lambda r=remaining: r)
        deadline = deadline_of(context, 30.0)  # type: ignore[arg-type]
        assert deadline - loop.time() == pytest.approx(expected, abs=0.5)


@pytest.mark.asyncio
async def test_health_is_not_serving_until_ready_then_serving() -> None:
    ready = asyncio.Event()
    built = build_server(ServerSettings(listen="127.0.0.1:0"), ready=ready.is_set)
    await built.start()
    try:
        assert await status_at(built.address) == NOT_SERVING
        ready.set()
        for _ in range(50):
            if await status_at(built.address) == SERVING:
                break
            await asyncio.sleep(0.1)
        assert await status_at(built.address) == SERVING
    finally:
        await built.drain()


@pytest.mark.asyncio
async def test_a_health_only_port_shares_the_status_and_serves_nothing_else() -> None:
    built = build_server(ServerSettings(listen="127.0.0.1:0", health_listen="127.0.0.1:0"))
    await built.start()
    health_address = f"127.0.0.1:{built.health_port}"
    try:
        assert built.health_port not in (0, built.port)
        assert await status_at(health_address) == SERVING
        async with grpc.aio.insecure_channel(health_address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await pb_grpc.TokenServiceStub(channel).IssueToken(
                    pb.IssueTokenRequest(), timeout=5
                )
            assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await built.drain()


def test_connection_age_and_keepalive_are_configured() -> None:
    options = dict(
        _channel_options(ServerSettings(max_connection_age_seconds=120, keepalive_seconds=45))
    )
    assert options["grpc.max_connection_age_ms"] == 120_000
    assert options["grpc.max_connection_age_grace_ms"] == 30_000
    assert options["grpc.keepalive_time_ms"] == 45_000
    assert options["grpc.http2.max_ping_strikes"] == 2
    assert options["grpc.so_reuseport"] == 0


class _LargeAnswers(TokenService):
    """PresignObjects that answers 100 URLs of 1 KiB each, whatever it was asked."""

    async def PresignObjects(
        self, request: pb.PresignObjectsRequest, context: ServicerContext
    ) -> pb.PresignObjectsResponse:
        url = "https://b.example/" + "u" * 1024
        presigned = pb.PresignObjectResponse(url=url)
        return pb.PresignObjectsResponse(results=[pb.PresignResult(presigned=presigned)] * 100)


@pytest.mark.asyncio
async def test_requests_are_capped_by_max_message_bytes_and_answers_are_not() -> None:
    settings = ServerSettings(listen="127.0.0.1:0", max_message_bytes=4096)
    built = build_server(settings, _LargeAnswers())
    await built.start()
    try:
        async with grpc.aio.insecure_channel(built.address) as channel:
            stub = pb_grpc.TokenServiceStub(channel)
            small = pb.PresignObjectsRequest(player_id="p1", items=[pb.PresignItem(key="k")])
            answer = await stub.PresignObjects(small, timeout=5)
            assert answer.ByteSize() > 100 * 1024
            large = pb.PresignObjectsRequest(player_id="p1", items=[pb.PresignItem(key="k" * 5000)])
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.PresignObjects(large, timeout=5)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await built.server.stop(None)
