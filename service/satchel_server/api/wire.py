"""TokenService on the server: its methods registered as bytes in, bytes out.

grpc decodes and encodes nothing here; the servicer does (see TokenService),
which lets it recognise a repeated request by its bytes. Clients see no
difference: the wire format is the proto's, and reflection describes it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc

from satchel.v1 import token_service_pb2 as pb

ServicerContext = grpc.aio.ServicerContext[Any, Any]
WireBehavior = Callable[[bytes, ServicerContext], Awaitable[bytes]]

_SERVICE = pb.DESCRIPTOR.services_by_name["TokenService"]
SERVICE_NAME: str = _SERVICE.full_name
METHOD_NAMES: tuple[str, ...] = tuple(method.name for method in _SERVICE.methods)


def register(server: grpc.aio.Server, methods: Mapping[str, WireBehavior]) -> None:
    """Serve TokenService from `methods`, one per RPC name, each bytes to bytes."""
    if set(methods) != set(METHOD_NAMES):
        raise ValueError(
            f"TokenService needs exactly {sorted(METHOD_NAMES)}, got {sorted(methods)}"
        )
    # No (de)serialisers: grpc hands over the request's bytes and sends the answer's.
    handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
        name: grpc.unary_unary_rpc_method_handler(methods[name]) for name in METHOD_NAMES
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    # As the generated registration does: grpc core then matches these paths itself.
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
