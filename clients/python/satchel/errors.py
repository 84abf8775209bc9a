"""Typed exceptions, one per status Satchel answers with, carrying the details it sent.

The server puts machine-readable details in the standard `grpc-status-details-bin`
trailer (a `google.rpc.Status`): `google.rpc.BadRequest` names the field that broke a
rule, `google.rpc.RetryInfo` says how long to wait before a retry can succeed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One request field that broke a rule: `field` is the request field's name."""

    field: str
    description: str


class SatchelError(Exception):
    """A call failed. `code` is the gRPC status; the server's message is `message`."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    # Whether the same call may succeed later without changing the request.
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        field_violations: Sequence[FieldViolation] = (),
        retry_delay: timedelta | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field_violations = tuple(field_violations)
        self.retry_delay = retry_delay

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.retry_delay is not None:
            text += f" (retry after {self.retry_delay.total_seconds():g} s)"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code.name})"


class InvalidArgumentError(SatchelError):
    """A field breaks a rule; `field_violations` names it. Fix the request, do not retry."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class UnauthenticatedError(SatchelError):
    """The server did not accept the caller's key (missing, unknown or revoked)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(SatchelError):
    """The caller's key is valid but not allowed to do this (for example in this scope)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class UnavailableError(SatchelError):
    """Satchel or STS is temporarily unavailable; retry after `retry_delay` when given."""

    code = grpc.StatusCode.UNAVAILABLE
    retryable = True


class ResourceExhaustedError(SatchelError):
    """A rate limit or quota was hit; retry after `retry_delay` when given."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    retryable = True


class DeadlineExceededError(SatchelError):
    """The deadline ran out before the answer came. Allow more time or retry."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    retryable = True


class FailedPreconditionError(SatchelError):
    """Satchel's cloud set-up is wrong for this scope: an operator must act."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class UnimplementedError(SatchelError):
    """The server does not implement this call (an older Satchel)."""

    code = grpc.StatusCode.UNIMPLEMENTED


class InternalServerError(SatchelError):
    """Satchel failed internally; the request was refused safely."""

    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[SatchelError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        UnauthenticatedError,
        PermissionDeniedError,
        UnavailableError,
        ResourceExhaustedError,
        DeadlineExceededError,
        FailedPreconditionError,
        UnimplementedError,
        InternalServerError,
    )
}


def _rich_status(trailing_metadata: Sequence[tuple[str, Any]] | None) -> Any | None:
    for key, value in trailing_metadata or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except DecodeError:  # a mangled trailer must not hide the real error
                return None
    return None


def _details(status: Any) -> tuple[list[FieldViolation], timedelta | None]:
    violations: list[FieldViolation] = []
    retry_delay: timedelta | None = None
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend(
                FieldViolation(v.field, v.description) for v in bad_request.field_violations
            )
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry_info = error_details_pb2.RetryInfo()
            detail.Unpack(retry_info)
            retry_delay = retry_info.retry_delay.ToTimedelta()
    return violations, retry_delay


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _typed(code: grpc.StatusCode, message: str, status: Any | None) -> SatchelError:
    violations, retry_delay = _details(status)
    cls = _BY_CODE.get(code, SatchelError)
    return cls(message, code=code, field_violations=violations, retry_delay=retry_delay)


def error_from_status(
    code: grpc.StatusCode,
    message: str,
    trailing_metadata: Sequence[tuple[str, Any]] | None = None,
) -> SatchelError:
    """The typed exception for a status, with BadRequest / RetryInfo details unpacked."""
    return _typed(code, message, _rich_status(trailing_metadata))


def error_from_status_message(status: status_pb2.Status) -> SatchelError:
    """The typed exception for a `google.rpc.Status` (one item's refusal in a batch)."""
    code = _CODES.get(status.code, grpc.StatusCode.UNKNOWN)
    return _typed(code, status.message, status)


def error_from_rpc(error: grpc.RpcError) -> SatchelError:
    """Translate a failed call (sync `grpc.RpcError` or `grpc.aio.AioRpcError`)."""
    # Both kinds of failed call are also grpc.Call objects carrying code, details, trailers.
    call: Any = error
    return error_from_status(call.code(), call.details() or "", call.trailing_metadata())
