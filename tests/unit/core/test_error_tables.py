"""The two error tables, row by row: STS codes -> domain errors -> gRPC statuses."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from satchel_server.api.status import map_error, rich_status
from satchel_server.errors import (
    DomainError,
    InternalFault,
    InvalidArgument,
    PermissionDenied,
    PolicyTooLarge,
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
from satchel_server.sts.errors import classify, is_retryable

S = grpc.StatusCode


@pytest.mark.parametrize(
    ("code", "http", "error_type", "retry", "status"),
    [
        ("Throttling.User", 400, UpstreamUnavailable, True, S.UNAVAILABLE),
        ("Throttling.Api", 400, UpstreamUnavailable, True, S.UNAVAILABLE),
        ("ServiceUnavailable", 503, UpstreamUnavailable, True, S.UNAVAILABLE),
        ("InternalError", 500, UpstreamUnavailable, True, S.UNAVAILABLE),
        ("SignatureNonceUsed", 400, UpstreamUnavailable, True, S.UNAVAILABLE),
        ("SomethingNew", 502, UpstreamUnavailable, True, S.UNAVAILABLE),
        ("InvalidParameter.PolicyGrammar", 400, UpstreamBug, False, S.INTERNAL),
        ("InvalidParameter.PolicySize", 400, UpstreamBug, False, S.INTERNAL),
        ("MissingParameter", 400, UpstreamBug, False, S.INTERNAL),
        ("NoPermission", 403, UpstreamRejected, False, S.FAILED_PRECONDITION),
        ("EntityNotExist.Role", 404, UpstreamRejected, False, S.FAILED_PRECONDITION),
        ("InvalidAccessKeyId.NotFound", 404, UpstreamRejected, False, S.FAILED_PRECONDITION),
        ("SignatureDoesNotMatch", 400, UpstreamRejected, False, S.FAILED_PRECONDITION),
        ("InvalidTimeStamp.Expired", 400, UpstreamRejected, False, S.FAILED_PRECONDITION),
        ("InvalidSecurityToken.Expired", 400, UpstreamRejected, False, S.FAILED_PRECONDITION),
        ("SomethingElse", 400, UpstreamRejected, False, S.FAILED_PRECONDITION),
    ],
)
def test_every_sts_code_maps_to_its_status(
    code: str, http: int, error_type: type, retry: bool, status: grpc.StatusCode
) -> None:
    error = classify(code, http, "REQ-1")
    assert type(error) is error_type
    assert is_retryable(code, http) is retry
    assert map_error(error).code == status


@pytest.mark.parametrize(
    ("error", "status", "retry_after", "caller_sees"),
    [
        (
            InvalidArgument("player_id", "must not contain '*'"),
            S.INVALID_ARGUMENT,
            None,
            "player_id: must not contain '*'",
        ),
        (UpstreamUnavailable("Throttling.User from STS", 2.5), S.UNAVAILABLE, 2.5, "retry"),
        (UpstreamUnavailable("the STS call budget is spent", 0.2), S.UNAVAILABLE, 0.2, "retry"),
        (UpstreamDeadline("late"), S.DEADLINE_EXCEEDED, None, "deadline"),
        (UpstreamRejected("NoPermission", "role trust"), S.FAILED_PRECONDITION, None, "operator"),
        (UpstreamBug("InvalidParameter.PolicyGrammar"), S.INTERNAL, None, "internal error"),
        (PolicyTooLarge(3000, 2048), S.INTERNAL, None, "internal error"),
        (InternalFault("shape"), S.INTERNAL, None, "internal error"),
        (DomainError("anything else"), S.INTERNAL, None, "internal error"),
        (Unauthenticated("unknown key id"), S.UNAUTHENTICATED, None, "missing or invalid"),
        (PermissionDenied("may not use scope 'x'"), S.PERMISSION_DENIED, None, "scope 'x'"),
        (RateLimited("player", 0.4), S.RESOURCE_EXHAUSTED, 0.4, "this player; retry"),
        (QuotaExceeded("the folder would pass its quota"), S.RESOURCE_EXHAUSTED, None, "quota"),
        (UsageUnavailable("OSS did not answer the usage lookup", 2.0), S.UNAVAILABLE, 2.0, "OSS"),
        (UsageDeadline("ran out while listing the folder"), S.DEADLINE_EXCEEDED, None, "listing"),
    ],
)
def test_every_domain_error_maps_to_a_status_and_a_message(
    error: DomainError, status: grpc.StatusCode, retry_after: float | None, caller_sees: str
) -> None:
    mapped = map_error(error)
    assert mapped.code == status
    assert mapped.retry_after_seconds == retry_after
    assert caller_sees in mapped.message


def _details(status: grpc.Status) -> status_pb2.Status:
    ((key, value),) = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    return status_pb2.Status.FromString(value)


def test_invalid_argument_carries_a_bad_request_detail() -> None:
    rich = _details(rich_status(InvalidArgument("ttl", "must be between 900 and 3600 seconds")))
    bad_request = error_details_pb2.BadRequest()
    assert rich.details[0].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("ttl", "must be between 900 and 3600 seconds")
    ]


def test_unavailable_carries_a_retry_info_rounded_up_to_whole_seconds() -> None:
    rich = _details(rich_status(UpstreamUnavailable("budget", 0.2)))
    info = error_details_pb2.RetryInfo()
    assert rich.details[0].Unpack(info)
    assert info.retry_delay.seconds == 1


def test_rate_limited_carries_a_retry_info() -> None:
    rich = _details(rich_status(RateLimited("caller", 2.2)))
    info = error_details_pb2.RetryInfo()
    assert rich.details[0].Unpack(info)
    assert info.retry_delay.seconds == 3


def test_unauthenticated_never_says_which_part_was_wrong() -> None:
    for reason in ("no credentials", "key does not match (0123)", "certificate names no caller"):
        assert map_error(Unauthenticated(reason)).message == "missing or invalid caller credentials"


def test_operator_detail_never_reaches_the_caller() -> None:
    error = UpstreamRejected("NoPermission", "role acs:ram::1234:role/x does not trust LTAIxyz")
    assert "LTAIxyz" not in map_error(error).message
    assert "1234" not in rich_status(error).details
