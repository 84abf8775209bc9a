"""The way in and out of every TokenService call: request id, caller, audit line, metrics.

Each handler runs its work inside `CallPipeline.call(rpc, context)`, which:
- gives the call a request id (the caller's `x-request-id`, or a new one; sent
  back in trailing metadata) that every log line written meanwhile carries;
- names the caller from a bearer key or client certificate (UNAUTHENTICATED,
  with no hint, when it cannot);
- hands the handler the call's audit record, to fill in what was asked and
  what was handed out (item by item, for a call of several items);
- turns a domain error into its status (api.status), and writes the call's
  audit lines (one, or one per item), before that status leaves;
- counts and times the call.

Health and reflection do not go through it, so they are neither gated,
audited nor counted.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

from satchel_server.access.audit import REFUSAL_STATUSES, AuditLog, CallRecord
from satchel_server.access.callers import Authenticator, Caller
from satchel_server.api.status import rich_status
from satchel_server.errors import DomainError
from satchel_server.observability.logs import request_id_var
from satchel_server.observability.metrics import RpcStats

log = logging.getLogger(__name__)

ServicerContext = grpc.aio.ServicerContext[Any, Any]

REQUEST_ID_HEADER = "x-request-id"
# A caller's request id is kept when it is a plain token; anything else (empty,
# long, odd characters) is replaced, so it cannot forge or break audit lines.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")
# The certificate SANs gRPC reports for a verified client certificate.
_SAN_PROPERTIES = ("peer_uri", "peer_dns")
_CODE_NAMES = {status.value[0]: status.name for status in grpc.StatusCode}


def _request_id(metadata: grpc.aio.Metadata | None) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str) and _REQUEST_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex


def cert_sans(context: ServicerContext) -> list[str]:
    """URI and DNS SANs of the client certificate; empty without mTLS."""
    properties = context.auth_context()
    return [
        value.decode("utf-8", "replace")
        for name in _SAN_PROPERTIES
        for value in properties.get(name, ())
    ]


def _status_name(context: ServicerContext, error: BaseException | None) -> str:
    """The status a call ended with: the one set on the context, else what `error` means."""
    # grpc.aio gives None when no status was set (the stubs say StatusCode), and an
    # int for a code set by abort().
    code: grpc.StatusCode | int | None = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):
        return _CODE_NAMES.get(code, grpc.StatusCode.UNKNOWN.name)
    if error is None:
        return grpc.StatusCode.OK.name
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED.name
    return grpc.StatusCode.UNKNOWN.name


def log_refusal(error: DomainError, code: grpc.StatusCode) -> None:
    """What operators need to know about a failed call or item (never a secret)."""
    if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.FAILED_PRECONDITION):
        log.error("%s: %s", type(error).__name__, getattr(error, "operator_message", error))
    elif code.name not in REFUSAL_STATUSES:  # the audit line records a refusal already
        log.warning("%s: %s", type(error).__name__, error)


class CallPipeline:
    """The steps every TokenService call goes through, around its handler's own work."""

    def __init__(
        self,
        authenticator: Authenticator | None = None,
        audit: AuditLog | None = None,
        stats: RpcStats | None = None,
    ) -> None:
        """Defaults: every caller let in, no audit lines, statistics kept but not served."""
        self._authenticator = authenticator or Authenticator({})
        self._audit = audit
        self._stats = stats or RpcStats()

    @asynccontextmanager
    async def call(self, rpc: str, context: ServicerContext) -> AsyncIterator[CallRecord]:
        """Serve one call of `rpc`: the block does the work and fills in the record it gets.

        A DomainError raised in the block ends the call with its mapped status.
        """
        started = time.perf_counter()
        self._stats.in_flight += 1
        metadata = context.invocation_metadata()
        request_id = _request_id(metadata)
        record = CallRecord(rpc=rpc, request_id=request_id, peer=context.peer())
        context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
        logged_as = request_id_var.set(request_id)
        try:
            try:
                record.caller = self._identify(context, metadata)
                yield record
            except DomainError as error:
                status = rich_status(error)
                record.refused(error)
                log_refusal(error, status.code)
                # The line is on record before the caller hears the answer.
                self._finished(record, status.code.name, started)
                # abort() replaces trailing metadata already set (the request id): send both.
                trailing = (*context.trailing_metadata(), *status.trailing_metadata)
                await context.abort(status.code, status.details, trailing)
            except BaseException as error:
                self._finished(record, _status_name(context, error), started)
                raise
            else:
                self._finished(record, _status_name(context, None), started)
        finally:
            request_id_var.reset(logged_as)

    def _identify(
        self, context: ServicerContext, metadata: grpc.aio.Metadata | None
    ) -> Caller | None:
        authenticator = self._authenticator
        if not authenticator.required:
            return None
        authorization = [
            value
            for key, value in metadata or ()
            if key == "authorization" and isinstance(value, str)
        ]
        sans = cert_sans(context) if authenticator.uses_certificates else []
        return authenticator.identify(authorization, sans)

    def _finished(self, record: CallRecord, status: str, started: float) -> None:
        """The one place a call's audit lines are written and its outcome counted."""
        if self._audit is not None:
            self._audit.write(record, status)
        self._stats.in_flight -= 1
        self._stats.finished(record.rpc, status, time.perf_counter() - started)
