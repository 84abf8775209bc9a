"""Every STS error code Satchel can meet, mapped to a domain error in one table.

Alibaba reports throttling with HTTP 400, so the code decides, never the status
alone. Messages name the upstream code for operators; callers see only the
generic text the API layer gives each kind.
"""

from __future__ import annotations

from satchel_server.errors import DomainError, UpstreamBug, UpstreamRejected, UpstreamUnavailable

# (code prefix, kind, retry). The first matching prefix wins; order matters.
# kinds: "unavailable" -> UNAVAILABLE, "rejected" -> FAILED_PRECONDITION,
# "bug" -> INTERNAL.
STS_ERROR_TABLE: tuple[tuple[str, str, bool], ...] = (
    ("Throttling", "unavailable", True),
    ("ServiceUnavailable", "unavailable", True),
    ("InternalError", "unavailable", True),
    ("SignatureNonceUsed", "unavailable", True),  # retried with a fresh nonce
    ("InvalidParameter", "bug", False),
    ("MissingParameter", "bug", False),
    ("InvalidAction", "bug", False),
    ("InvalidVersion", "bug", False),
    ("NoPermission", "rejected", False),
    ("EntityNotExist.Role", "rejected", False),
    ("InvalidAccessKeyId", "rejected", False),
    ("SignatureDoesNotMatch", "rejected", False),
    ("InvalidSecurityToken", "rejected", False),
    ("InvalidTimeStamp", "rejected", False),  # our clock is off: an operator must act
    ("Forbidden", "rejected", False),
)


def _lookup(code: str, http_status: int) -> tuple[str, bool]:
    """(kind, retryable) for a code; unknown codes go by the HTTP status."""
    for prefix, kind, retry in STS_ERROR_TABLE:
        if code.startswith(prefix):
            return kind, retry
    return ("unavailable", True) if http_status >= 500 else ("rejected", False)


def is_retryable(code: str, http_status: int) -> bool:
    return _lookup(code, http_status)[1]


def classify(code: str, http_status: int, request_id: str) -> DomainError:
    """The domain error for an STS error answer."""
    where = f"STS answered HTTP {http_status} {code} (RequestId {request_id or 'none'})"
    kind, _ = _lookup(code, http_status)
    if kind == "unavailable":
        return UpstreamUnavailable(where, retry_after_seconds=1.0)
    if kind == "bug":
        return UpstreamBug(code)
    return UpstreamRejected(code, where)
