"""Typed exceptions: one class per status, carrying the details Satchel's server sends."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from support.scripted_server import Failure, status_of

import satchel
from satchel.errors import STATUS_DETAILS_KEY, error_from_status
from satchel_server.api.status import rich_status
from satchel_server.errors import InvalidArgument, UpstreamRejected, UpstreamUnavailable


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, satchel.InvalidArgumentError),
        (grpc.StatusCode.UNAUTHENTICATED, satchel.UnauthenticatedError),
        (grpc.StatusCode.PERMISSION_DENIED, satchel.PermissionDeniedError),
        (grpc.StatusCode.UNAVAILABLE, satchel.UnavailableError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, satchel.ResourceExhaustedError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, satchel.DeadlineExceededError),
        (grpc.StatusCode.FAILED_PRECONDITION, satchel.FailedPreconditionError),
        (grpc.StatusCode.UNIMPLEMENTED, satchel.UnimplementedError),
        (grpc.StatusCode.INTERNAL, satchel.InternalServerError),
        (grpc.StatusCode.ABORTED, satchel.SatchelError),
    ],
)
def test_each_status_has_its_class(code: grpc.StatusCode, cls: type[satchel.SatchelError]) -> None:
    error = error_from_status(code, "message")
    assert type(error) is cls
    assert error.code == code
    assert error.message == "message"
    assert isinstance(error, satchel.SatchelError)


def test_the_servers_bad_request_detail_names_the_field() -> None:
    status = rich_status(InvalidArgument("player_id", "must not contain '*'"))
    error = error_from_status(status.code, status.details, status.trailing_metadata)
    assert isinstance(error, satchel.InvalidArgumentError)
    assert error.field_violations == (satchel.FieldViolation("player_id", "must not contain '*'"),)
    assert error.retry_delay is None
    assert not error.retryable


def test_the_servers_retry_info_becomes_a_delay() -> None:
    status = rich_status(UpstreamUnavailable("throttled", retry_after_seconds=2.2))
    error = error_from_status(status.code, status.details, status.trailing_metadata)
    assert isinstance(error, satchel.UnavailableError)
    assert error.retry_delay == timedelta(seconds=3)  # the server rounds up to whole seconds
    assert error.retryable
    assert "retry after 3 s" in str(error)


def test_an_operator_error_carries_the_message_only() -> None:
    status = rich_status(UpstreamRejected("NoPermission", "role trust policy"))
    error = error_from_status(status.code, status.details, status.trailing_metadata)
    assert isinstance(error, satchel.FailedPreconditionError)
    assert error.field_violations == ()
    assert "operator" in error.message


def test_sub_second_retry_info_and_several_details() -> None:
    status = status_of(
        Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, timedelta(milliseconds=250), field="ttl")
    )
    error = error_from_status(status.code, status.details, status.trailing_metadata)
    assert error.retry_delay == timedelta(milliseconds=250)
    assert [v.field for v in error.field_violations] == ["ttl"]


def test_a_mangled_details_trailer_still_gives_the_typed_error() -> None:
    error = error_from_status(
        grpc.StatusCode.UNAVAILABLE, "down", [(STATUS_DETAILS_KEY, b"\xff\xff not a status")]
    )
    assert isinstance(error, satchel.UnavailableError)
    assert error.retry_delay is None
    assert repr(error) == "UnavailableError('down', code=UNAVAILABLE)"
