"""A server interceptor that counts and times every unary RPC by method and status."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from service.api.wrapping import Unary, UnaryWrappers
from service.metrics import Metrics

if TYPE_CHECKING:
    from service.api.wrapping import Handler


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._handlers = UnaryWrappers(self._timed)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # streams (health Watch, reflection) are not timed
        # Unknown methods never get here, so the method label stays bounded.
        return self._handlers.wrapped(handler_call_details.method, handler)

    def _timed(self, method: str, inner: Unary) -> Unary:
        metrics = self._metrics
        latency = metrics.rpc_latency.labels(method)
        counters: dict[str, Any] = {}  # the labelled child per status, looked up once

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
                counter = counters.get(code)
                if counter is None:
                    counter = counters[code] = metrics.rpc_requests.labels(method, code)
                counter.inc()

        return timed


def _code_name(code: object) -> str | None:
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # grpc.aio reports codes set by abort() as ints
        for status in grpc.StatusCode:
            if status.value[0] == code:
                return status.name
    return None
