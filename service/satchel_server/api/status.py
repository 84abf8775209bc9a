"""Domain errors -> gRPC status, in one table, with rich details where they help.

Callers get a status, a message that tells them what to do, and machine-readable
details (google.rpc.BadRequest for a bad field, google.rpc.RetryInfo when a
retry can succeed). Operators get the upstream detail in the log. Nothing
secret reaches either: domain errors never carry secrets in their messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from satchel_server.errors import (
    DomainError,
    InternalFault,
    InvalidArgument,
    NotConfigured,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    Unauthenticated,
    UpstreamBug,
    UpstreamDeadline,
    UpstreamRejected,
    UpstreamUnavailable,
    UsageDeadline,
    UsageUnavailable,
)


@dataclass(frozen=True, slots=True)
class Mapped:
    code: grpc.StatusCode
    message: str
    retry_after_seconds: float | None = None
    field: str | None = None


# (error class, status, what the caller is told). First match wins: subclasses first.
STATUS_TABLE: tuple[tuple[type[DomainError], grpc.StatusCode, str], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT, ""),  # message is the field's rule
    # The same words whatever was wrong: a probe learns nothing about which part failed.
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED, "missing or invalid caller credentials"),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED, ""),  # message names the rule
    (RateLimited, grpc.StatusCode.RESOURCE_EXHAUSTED, ""),  # message names caller or player
    (QuotaExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED, ""),  # message gives usage and quota
    (UsageUnavailable, grpc.StatusCode.UNAVAILABLE, ""),  # message says why; RetryInfo, when
    (
        UpstreamUnavailable,
        grpc.StatusCode.UNAVAILABLE,
        "credentials are temporarily unavailable (STS throttled, failing or unreachable); "
        "retry after the RetryInfo delay",
    ),
    (UsageDeadline, grpc.StatusCode.DEADLINE_EXCEEDED, ""),  # message names the listing
    (
        UpstreamDeadline,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "the deadline ran out before STS answered; allow at least a few seconds",
    ),
    (
        UpstreamRejected,
        grpc.StatusCode.FAILED_PRECONDITION,
        "STS refused Satchel's request for this scope; an operator must fix the cloud set-up",
    ),
    (NotConfigured, grpc.StatusCode.FAILED_PRECONDITION, ""),  # message names the RPC
    (UpstreamBug, grpc.StatusCode.INTERNAL, "internal error: STS rejected a request parameter"),
    (InternalFault, grpc.StatusCode.INTERNAL, "internal error: the request was refused safely"),
)


def _row(error: DomainError) -> tuple[grpc.StatusCode, str]:
    for cls, code, message in STATUS_TABLE:
        if isinstance(error, cls):
            return code, message
    return grpc.StatusCode.INTERNAL, "internal error"


def map_error(error: DomainError) -> Mapped:
    code, message = _row(error)
    if isinstance(error, InvalidArgument):
        return Mapped(code, str(error), field=error.field)
    if isinstance(error, RateLimited):
        message = f"{error}; retry after the RetryInfo delay"
    retry = (
        error.retry_after_seconds if isinstance(error, UpstreamUnavailable | RateLimited) else None
    )
    return Mapped(code, message or str(error), retry_after_seconds=retry)


def _packed(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def status_message(error: DomainError) -> status_pb2.Status:
    """The google.rpc.Status of `error`: code, message, BadRequest and RetryInfo details."""
    mapped = map_error(error)
    details = []
    if mapped.field is not None and isinstance(error, InvalidArgument):
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=mapped.field, description=error.rule
        )
        details.append(_packed(error_details_pb2.BadRequest(field_violations=[violation])))
    if mapped.retry_after_seconds is not None:
        seconds = max(1, math.ceil(mapped.retry_after_seconds))
        delay = duration_pb2.Duration(seconds=seconds)
        details.append(_packed(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(
        code=getattr(code_pb2, mapped.code.name), message=mapped.message, details=details
    )


def rich_status(error: DomainError) -> grpc.Status:
    """`error` as the status a whole call ends with (details in the standard trailer)."""
    converted: grpc.Status = rpc_status.to_status(status_message(error))
    return converted
