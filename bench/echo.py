"""A bare grpc.aio echo service: the baseline that Satchel's RPC throughput is compared with.

It parses nothing and computes nothing. Each method answers every request with a prepared
payload the size of the real RPC's answer, and clients send it the real RPC's request bytes,
so both move the same bytes through the same server and the difference is Satchel's own work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

SERVICE = "bench.Echo"


def method_path(name: str) -> str:
    return f"/{SERVICE}/{name}"


def _answering(payload: bytes) -> grpc.RpcMethodHandler[Any, Any]:
    async def echo(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        return payload

    # No (de)serialisers: grpc hands over and sends raw bytes.
    return grpc.unary_unary_rpc_method_handler(echo)


def handler(response_sizes: Mapping[str, int]) -> grpc.GenericRpcHandler:
    """One method per name, each answering with `size` bytes."""
    return grpc.method_handlers_generic_handler(
        SERVICE, {name: _answering(b"e" * size) for name, size in response_sizes.items()}
    )
