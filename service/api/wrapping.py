"""Wrapped unary handlers, built once per method rather than once per call.

grpc.aio asks every interceptor for the method handler on every call. Building a
new closure and handler object each time is pure overhead: the handler a method
resolves to never changes while the server runs, so the wrapped one is kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

if TYPE_CHECKING:  # RpcMethodHandler is generic only in the type stubs, not at run time
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
Unary = Callable[[Any, Any], Awaitable[Any]]
Wrap = Callable[[str, Unary], Unary]


class UnaryWrappers:
    """`wrap(short method name, behaviour)` applied once per method, then reused."""

    def __init__(self, wrap: Wrap) -> None:
        self._wrap = wrap
        self._built: dict[str, tuple[Handler, Handler]] = {}

    def wrapped(self, method_path: str, handler: Handler) -> Handler:
        built = self._built.get(method_path)
        if built is not None and built[0] is handler:
            return built[1]
        # In grpc.aio the behaviour of a unary handler is a coroutine function.
        inner: Unary = handler.unary_unary  # type: ignore[assignment]
        wrapped = grpc.unary_unary_rpc_method_handler(
            self._wrap(method_path.rsplit("/", 1)[-1], inner),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._built[method_path] = (handler, wrapped)
        return wrapped
