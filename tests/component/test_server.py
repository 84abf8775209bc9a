"""The real server in-process on 127.0.0.1:0: health, reflection, limits, RPC stubs."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from satchel_server.api.server import ListenError, SatchelServer, build_server
from satchel_server.config import ServerSettings


async def health_status(channel: grpc.aio.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return reply.status


@pytest.mark.asyncio
async def test_health_is_serving_for_server_and_token_service(channel: grpc.aio.Channel) -> None:
    assert await health_status(channel) == health_pb2.HealthCheckResponse.SERVING
    assert (
        await health_status(channel, "satchel.v1.TokenService")
        == health_pb2.HealthCheckResponse.SERVING
    )


def _describe(address: str) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """Use grpcio-reflection's own client, as grpcurl would use the protocol."""
    with grpc.insecure_channel(address) as sync_channel:
        database = ProtoReflectionDescriptorDatabase(sync_channel)
        services = sorted(database.get_services())
        service = DescriptorPool(database).FindServiceByName("satchel.v1.TokenService")
        methods = {
            m.name: (m.input_type.full_name, m.output_type.full_name) for m in service.methods
        }
    return services, methods


@pytest.mark.asyncio
async def test_reflection_lists_and_describes_token_service(server: SatchelServer) -> None:
    services, methods = await asyncio.to_thread(_describe, server.address)
    assert "satchel.v1.TokenService" in services
    assert "grpc.health.v1.Health" in services
    assert methods == {
        "IssueToken": ("satchel.v1.IssueTokenRequest", "satchel.v1.IssueTokenResponse"),
        "PresignObject": ("satchel.v1.PresignObjectRequest", "satchel.v1.PresignObjectResponse"),
        # Its response imports google/rpc/status.proto: reflection serves that file too.
        "PresignObjects": (
            "satchel.v1.PresignObjectsRequest",
            "satchel.v1.PresignObjectsResponse",
        ),
    }


@pytest.mark.asyncio
async def test_reflection_is_off_unless_enabled() -> None:
    built = build_server(ServerSettings(listen="127.0.0.1:0", reflection=False))
    await built.start()
    try:
        with pytest.raises(grpc.RpcError) as caught:
            await asyncio.to_thread(_describe, built.address)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await built.server.stop(None)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("rpc", "request_message"),
    [
        ("IssueToken", pb.IssueTokenRequest(player_id="p1")),
        ("PresignObject", pb.PresignObjectRequest(player_id="p1", key="save.dat")),
    ],
)
async def test_rpcs_without_scopes_are_a_failed_precondition(
    channel: grpc.aio.Channel, rpc: str, request_message: object
) -> None:
    stub = pb_grpc.TokenServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, rpc)(request_message, timeout=5)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "without scopes" in (caught.value.details() or "")


@pytest.mark.asyncio
async def test_oversize_message_is_refused(channel: grpc.aio.Channel) -> None:
    stub = pb_grpc.TokenServiceStub(channel)
    too_big = pb.PresignObjectRequest(player_id="p1", key="k" * (65 * 1024))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.PresignObject(too_big, timeout=5)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.asyncio
async def test_drain_reports_not_serving_then_refuses_calls(server: SatchelServer) -> None:
    async with grpc.aio.insecure_channel(server.address) as chan:
        watch = health_pb2_grpc.HealthStub(chan).Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        drained = asyncio.create_task(server.drain())
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        await drained
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_status(chan)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.asyncio
async def test_binding_a_taken_address_fails_clearly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(ListenError) as caught:
            build_server(ServerSettings(listen=address))
    assert address in str(caught.value)
    assert "--listen" in str(caught.value)
