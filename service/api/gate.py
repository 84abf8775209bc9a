"""The caller gate: a server interceptor every TokenService call passes through.

It gives the call a request id (the caller's `x-request-id`, or a new one; sent
back in trailing metadata), names the caller from its bearer key or client
certificate (UNAUTHENTICATED, with no hint, when it cannot), opens the call's
audit record for the servicer and admission to fill in, and writes the one
audit line once the status is known, whatever the outcome.

Wrapping the method handler rather than only inspecting the call matters: the
client certificate is visible only through the handler's context, and the
outcome only after the handler ran. Health and reflection are not gated.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from service.api.status import abort_with
from service.api.wrapping import UnaryWrappers
from service.audit import AuditLog, CallRecord, close_call, open_call
from service.callers import Authenticator, Caller
from service.errors import Unauthenticated
from service.logs import request_id_var

REQUEST_ID_HEADER = "x-request-id"
# A caller's request id is kept when it is a plain token; anything else (empty,
# long, odd characters) is replaced, so it cannot forge or break audit lines.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")
# The certificate SANs gRPC reports for a verified client certificate.
_SAN_PROPERTIES = ("peer_uri", "peer_dns")

ServicerContext = grpc.aio.ServicerContext[Any, Any]
Behavior = Callable[[Any, ServicerContext], Awaitable[Any]]


def _request_id(metadata: tuple[tuple[str, str | bytes], ...]) -> str:
    for key, value in metadata:
        if key == REQUEST_ID_HEADER and isinstance(value, str) and _REQUEST_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex


def _metadata(context: ServicerContext) -> tuple[tuple[str, str | bytes], ...]:
    return tuple((key, value) for key, value in context.invocation_metadata() or ())


def cert_sans(context: ServicerContext) -> list[str]:
    """URI and DNS SANs of the client certificate; empty without mTLS."""
    properties = context.auth_context()
    return [
        value.decode("utf-8", "replace")
        for name in _SAN_PROPERTIES
        for value in properties.get(name, ())
    ]


def _status_name(context: ServicerContext, error: BaseException) -> str:
    # grpc.aio gives None when no status was set (the stubs say StatusCode).
    code: grpc.StatusCode | None = context.code()
    if code is not None:
        return code.name
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED.name
    return grpc.StatusCode.UNKNOWN.name


class CallerGate(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        authenticator: Authenticator,
        audit: AuditLog,
        service_prefix: str = "/satchel.v1.TokenService/",
    ) -> None:
        self._authenticator = authenticator
        self._audit = audit
        self._prefix = service_prefix
        self._handlers = UnaryWrappers(self._guard)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or handler.unary_unary is None or not method.startswith(self._prefix):
            return handler
        return self._handlers.wrapped(method, handler)

    def _identify(
        self, context: ServicerContext, metadata: tuple[tuple[str, str | bytes], ...]
    ) -> Caller | None:
        authenticator = self._authenticator
        if not authenticator.required:
            return None  # running open: nothing to read
        authorization = [
            value for key, value in metadata if key == "authorization" and isinstance(value, str)
        ]
        sans = cert_sans(context) if authenticator.uses_certificates else []
        return authenticator.identify(authorization, sans)

    def _guard(self, rpc: str, inner: Behavior) -> Behavior:
        async def guarded(request: Any, context: ServicerContext) -> Any:
            metadata = _metadata(context)
            record = CallRecord(rpc=rpc, request_id=_request_id(metadata))
            record.peer = context.peer()
            context.set_trailing_metadata(((REQUEST_ID_HEADER, record.request_id),))
            written = False

            def settle(status: str) -> None:
                nonlocal written
                if not written:
                    written = True
                    self._audit.write(record, status)

            record.settle = settle
            token = open_call(record)
            # Every log line written while serving the call carries its request id.
            logged_as = request_id_var.set(record.request_id)
            status = grpc.StatusCode.OK.name
            try:
                try:
                    record.caller = self._identify(context, metadata)
                except Unauthenticated as error:
                    await abort_with(context, error)
                return await inner(request, context)
            except BaseException as error:
                status = _status_name(context, error)
                raise
            finally:
                request_id_var.reset(logged_as)
                close_call(token)
                settle(status)

        return guarded
