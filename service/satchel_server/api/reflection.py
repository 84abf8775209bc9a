"""Server reflection under both names clients ask for: grpc.reflection.v1 and v1alpha.

grpcio-reflection serves only v1alpha, while grpcurl and other current tools ask for v1
first. The two protocols are the same messages with the same field numbers under another
package name, so one servicer answers both: v1 requests are read with the v1alpha classes.
The v1 file is added to the descriptor pool too, so `describe` works on the v1 service.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE_NAME = f"{V1_PACKAGE}.ServerReflection"
V1_FILE_NAME = "grpc/reflection/v1/reflection.proto"
_METHOD = "ServerReflectionInfo"


def _renamed(type_name: str, old_package: str) -> str:
    return type_name.replace(f".{old_package}.", f".{V1_PACKAGE}.", 1)


@functools.cache
def _add_v1_file_to_pool() -> None:
    """The v1alpha file, renamed to v1, in the pool the reflection servicer reads."""
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old_package = proto.package
    proto.name = V1_FILE_NAME
    proto.package = V1_PACKAGE
    for message in proto.message_type:
        for field in message.field:
            if field.type_name:
                field.type_name = _renamed(field.type_name, old_package)
    for service in proto.service:
        for method in service.method:
            method.input_type = _renamed(method.input_type, old_package)
            method.output_type = _renamed(method.output_type, old_package)
    descriptor_pool.Default().Add(proto)


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection (v1 and v1alpha) describing `service_names` and itself."""
    _add_v1_file_to_pool()
    names = (*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)
    servicer = reflection.aio.ReflectionServicer(names)
    for service in (V1ALPHA_SERVICE_NAME, V1_SERVICE_NAME):
        handler = grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {_METHOD: handler}),)
        )
