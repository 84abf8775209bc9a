"""The way in and out of every TokenService call: request id, caller, audit line, metrics.

Each call gets a request id (the caller's `x-request-id`, or a new one; sent
back in trailing metadata), is counted and timed, has its caller named from a
bearer key or client certificate (UNAUTHENTICATED, with no hint, when it
cannot), opens the audit record that admission and the servicer fill in, and
ends with exactly one audit line once its status is known, whatever the outcome.

This wraps the servicer's methods once, when they are registered, rather than
being a grpc.aio server interceptor. grpc.aio runs its interceptor chain
(continuations, coroutines, a handler lookup through each) on every call, and
at cache-hit speed that machinery cost more than serving the call itself.
The wrapper sees what an interceptor would: the request, the context (the
client certificate is visible only there) and the outcome. Health and
reflection are not wrapped, so they are neither gated, audited nor counted.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc

from satchel_server.access.audit import AuditLog, CallRecord, close_call, open_call
from satchel_server.access.callers import Authenticator, Caller
from satchel_server.api.status import abort_with
from satchel_server.errors import Unauthenticated
from satchel_server.observability.logs import request_id_var
from satchel_server.observability.metrics import RpcStats

REQUEST_ID_HEADER = "x-request-id"
# A caller's request id is kept when it is a plain token; anything else (empty,
# long, odd characters) is replaced, so it cannot forge or break audit lines.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")
# The certificate SANs gRPC reports for a verified client certificate.
_SAN_PROPERTIES = ("peer_uri", "peer_dns")
_OK = grpc.StatusCode.OK.name
_CODE_NAMES = {status.value[0]: status.name for status in grpc.StatusCode}

ServicerContext = grpc.aio.ServicerContext[Any, Any]
Behavior = Callable[[Any, ServicerContext], Awaitable[Any]]


class _RequestIds:
    """New request ids: 16 random hex digits per process, then a counter.

    Unique across a fleet like a uuid4, without reading the OS's random source on
    every call. A request id correlates lines; it is not a secret.
    """

    def __init__(self) -> None:
        self._process = uuid.uuid4().hex[:16]
        self._counter = itertools.count()

    def new(self) -> str:
        return f"{self._process}{next(self._counter):016x}"


def _request_id(metadata: grpc.aio.Metadata | None, ids: _RequestIds) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str) and _REQUEST_ID.fullmatch(value):
            return value
    return ids.new()


def cert_sans(context: ServicerContext) -> list[str]:
    """URI and DNS SANs of the client certificate; empty without mTLS."""
    properties = context.auth_context()
    return [
        value.decode("utf-8", "replace")
        for name in _SAN_PROPERTIES
        for value in properties.get(name, ())
    ]


def _status_name(context: ServicerContext, error: BaseException | None) -> str:
    # grpc.aio gives None when no status was set (the stubs say StatusCode), and an
    # int for a code set by abort().
    code: grpc.StatusCode | int | None = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):
        return _CODE_NAMES.get(code, grpc.StatusCode.UNKNOWN.name)
    if error is None:
        return _OK
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED.name
    return grpc.StatusCode.UNKNOWN.name


class CallPipeline:
    """Wraps each TokenService method in the steps every call goes through."""

    def __init__(self, authenticator: Authenticator, audit: AuditLog, stats: RpcStats) -> None:
        self._authenticator = authenticator
        self._audit = audit
        self._stats = stats
        self._ids = _RequestIds()

    def methods(self, inner: Mapping[str, Behavior]) -> dict[str, Behavior]:
        """`inner`'s methods, each wrapped; register these."""
        return {name: self.wrap(name, behavior) for name, behavior in inner.items()}

    def _identify(
        self, context: ServicerContext, metadata: grpc.aio.Metadata | None
    ) -> Caller | None:
        authenticator = self._authenticator
        authorization = [
            value
            for key, value in metadata or ()
            if key == "authorization" and isinstance(value, str)
        ]
        sans = cert_sans(context) if authenticator.uses_certificates else []
        return authenticator.identify(authorization, sans)

    def wrap(self, rpc: str, inner: Behavior) -> Behavior:
        audit, stats, ids = self._audit, self._stats, self._ids
        authenticating = self._authenticator.required  # else running open: nothing to read

        async def served(request: Any, context: ServicerContext) -> Any:
            stats.in_flight += 1
            started = time.perf_counter()
            metadata = context.invocation_metadata()
            request_id = _request_id(metadata, ids)
            record = CallRecord(rpc, request_id, context.peer(), audit)
            context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
            opened = open_call(record)
            # Every log line written while serving the call carries its request id.
            logged_as = request_id_var.set(request_id)
            status = _OK
            try:
                if authenticating:
                    try:
                        record.caller = self._identify(context, metadata)
                    except Unauthenticated as error:
                        await abort_with(context, error)
                reply = await inner(request, context)
                if context.code() is not None:  # a status set without raising
                    status = _status_name(context, None)
                return reply
            except BaseException as error:
                status = _status_name(context, error)
                raise
            finally:
                request_id_var.reset(logged_as)
                close_call(opened)
                record.settle(status)  # unless abort_with() already did
                stats.in_flight -= 1
                stats.finished(rpc, status, time.perf_counter() - started)

        return served
