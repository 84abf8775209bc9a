"""Reflection answers under grpc.reflection.v1 and v1alpha, through a real channel.

grpcurl asks for v1 first and falls back to v1alpha; other tools ask for one only. The two
protocols share their messages' field numbers, so the v1alpha classes encode v1 requests
exactly as a v1 client does.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

from satchel_server.api.server import SatchelServer

VERSIONS = ("grpc.reflection.v1", "grpc.reflection.v1alpha")
Request = reflection_pb2.ServerReflectionRequest
Response = reflection_pb2.ServerReflectionResponse


def ask(address: str, package: str, *requests: Request) -> list[Response]:
    with grpc.insecure_channel(address) as channel:
        call = channel.stream_stream(
            f"/{package}.ServerReflection/ServerReflectionInfo",
            request_serializer=Request.SerializeToString,
            response_deserializer=Response.FromString,
        )
        return list(call(iter(requests), timeout=10))


def files(response: Response) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    found = {}
    for raw in response.file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        found[proto.name] = proto
    return found


@pytest.mark.asyncio
@pytest.mark.parametrize("package", VERSIONS)
async def test_each_version_lists_and_describes_the_api(
    server: SatchelServer, package: str
) -> None:
    listed, described = await asyncio.to_thread(
        ask,
        server.address,
        package,
        Request(list_services=""),
        Request(file_containing_symbol="satchel.v1.TokenService"),
    )
    names = {s.name for s in listed.list_services_response.service}
    assert {
        "satchel.v1.TokenService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names
    api = files(described)["satchel/v1/token_service.proto"]
    assert [m.name for m in api.service[0].method] == [
        "IssueToken",
        "PresignObject",
        "PresignObjects",
    ]


@pytest.mark.asyncio
async def test_the_v1_service_describes_itself_in_its_own_package(server: SatchelServer) -> None:
    (response,) = await asyncio.to_thread(
        ask,
        server.address,
        "grpc.reflection.v1",
        Request(file_containing_symbol="grpc.reflection.v1.ServerReflection"),
    )
    v1 = files(response)["grpc/reflection/v1/reflection.proto"]
    assert v1.package == "grpc.reflection.v1"
    (method,) = v1.service[0].method
    assert (method.input_type, method.output_type) == (
        ".grpc.reflection.v1.ServerReflectionRequest",
        ".grpc.reflection.v1.ServerReflectionResponse",
    )
    nested = {f.type_name for m in v1.message_type for f in m.field if f.type_name}
    assert nested
    assert all(name.startswith(".grpc.reflection.v1.") for name in nested)
