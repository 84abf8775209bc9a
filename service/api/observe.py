"""A server interceptor that counts and times every unary RPC by method and status."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from service.metrics import Metrics

if TYPE_CHECKING:  # RpcMethodHandler is generic only in the type stubs, not at run time
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
Unary = Callable[[Any, Any], Awaitable[Any]]


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # streams (health Watch, reflection) are not timed
        # The label is the method's short name; unknown methods never get here.
        method = handler_call_details.method.rsplit("/", 1)[-1]
        # In grpc.aio the behaviour of a unary handler is a coroutine function.
        inner: Unary = handler.unary_unary
        return grpc.unary_unary_rpc_method_handler(
            self._timed(method, inner),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _timed(self, method: str, inner: Unary) -> Unary:
        metrics = self._metrics
        latency = metrics.rpc_latency.labels(method)

        async def timed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            metrics.rpc_in_flight.inc()
            started = time.perf_counter()
            code = "UNKNOWN"
            try:
                reply = await inner(request, context)
                code = _code_name(context.code()) or "OK"
                return reply
            except BaseException:
                # context.abort() raises after setting the code; anything else is a crash.
                code = _code_name(context.code()) or "UNKNOWN"
                raise
            finally:
                metrics.rpc_in_flight.dec()
                latency.observe(time.perf_counter() - started)
                metrics.rpc_requests.labels(method, code).inc()

        return timed


def _code_name(code: object) -> str | None:
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # grpc.aio reports codes set by abort() as ints
        for status in grpc.StatusCode:
            if status.value[0] == code:
                return status.name
    return None
