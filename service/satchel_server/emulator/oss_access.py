"""Who may do what in OSS: the principal behind a verified request, and the RAM check.

A RAM user's key (from the accounts file) acts as the owner of its account's buckets. An STS
session is checked against its role's policies ∩ its session policy, with the request's
condition keys (`acs:SourceIp`, `acs:CurrentTime`, `acs:SecureTransport`, and `oss:Prefix`,
`oss:Delimiter` when listing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from satchel_server.emulator.accounts import Bucket, Session
from satchel_server.emulator.errors import OssError
from satchel_server.emulator.ram_policy import Request, is_allowed


@dataclass(frozen=True)
class Principal:
    account_id: str
    session: Session | None = None


def resource_arn(bucket: Bucket, key: str | None) -> str:
    base = f"acs:oss:{bucket.region}:{bucket.account_id}:{bucket.name}"
    return base if key is None else f"{base}/{key}"


def request_context(source_ip: str, now: float, extra: Mapping[str, str]) -> dict[str, str]:
    return {
        "acs:SourceIp": source_ip,
        "acs:CurrentTime": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "acs:SecureTransport": "false",
        **extra,
    }


def authorize(
    principal: Principal,
    bucket: Bucket,
    action: str,
    key: str | None,
    context: Mapping[str, str],
) -> None:
    """Raise AccessDenied unless `principal` may perform `action` on the bucket or key."""
    if principal.account_id != bucket.account_id:
        raise OssError("AccessDenied", "The bucket you access does not belong to you.")
    session = principal.session
    if session is None:
        return
    request = Request(action, resource_arn(bucket, key), context)
    if not is_allowed(session.role.policies, session.session_policy, request):
        raise OssError("AccessDenied", "You have no right to access this object.")
