"""TokenService: translates between protobuf messages and the domain, nothing more.

Validation lives in `service.scopes`, caching and STS in `service.broker`,
status mapping in `service.api.status`. PresignObject answers UNIMPLEMENTED
until its issue lands: a clear status beats a fake response a caller might trust.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from service.api.status import abort_with
from service.broker import CredentialBroker
from service.config import ScopeSettings
from service.errors import InvalidArgument, SatchelError
from service.scopes import Permission, validate_token_request

ServicerContext = grpc.aio.ServicerContext[Any, Any]

_FROM_PROTO: dict[pb.Permission.ValueType, Permission] = {
    pb.PERMISSION_READ: Permission.READ,
    pb.PERMISSION_WRITE: Permission.WRITE,
    pb.PERMISSION_LIST: Permission.LIST,
    pb.PERMISSION_DELETE: Permission.DELETE,
}
_TO_PROTO = {domain: wire for wire, domain in _FROM_PROTO.items()}


def permissions_from_proto(values: Iterable[pb.Permission.ValueType]) -> list[Permission]:
    permissions = []
    for value in values:
        if value not in _FROM_PROTO:
            raise InvalidArgument("permissions", f"{value} is not a permission (1-4)")
        permissions.append(_FROM_PROTO[value])
    return permissions


def deadline_of(context: ServicerContext) -> float | None:
    """The caller's deadline as event-loop time, or None when it set none."""
    # grpc.aio returns None when the caller set no deadline (the stubs say float).
    remaining: float | None = context.time_remaining()
    if remaining is None:
        return None
    return asyncio.get_running_loop().time() + remaining


class TokenService(pb_grpc.TokenServiceServicer):
    def __init__(
        self,
        scopes: Mapping[str, ScopeSettings] | None = None,
        broker: CredentialBroker | None = None,
    ) -> None:
        self._scopes = scopes or {}
        self._broker = broker

    async def IssueToken(
        self, request: pb.IssueTokenRequest, context: ServicerContext
    ) -> pb.IssueTokenResponse:
        if self._broker is None:
            await _not_configured(context, "IssueToken")
        try:
            token_request = validate_token_request(
                self._scopes,
                scope_name=request.scope,
                player_id=request.player_id,
                permissions=permissions_from_proto(request.permissions),
                ttl_seconds=(
                    request.ttl.ToTimedelta().total_seconds() if request.HasField("ttl") else None
                ),
            )
            issued = await self._broker.credentials_for(
                token_request, deadline=deadline_of(context)
            )
        except SatchelError as error:
            await abort_with(context, error)
        scope, credentials = token_request.scope, issued.credentials
        expiration = Timestamp()
        expiration.FromDatetime(credentials.expiration)
        return pb.IssueTokenResponse(
            credentials=pb.Credentials(
                access_key_id=credentials.access_key_id,
                access_key_secret=credentials.access_key_secret,
                security_token=credentials.security_token,
                expiration=expiration,
            ),
            location=pb.StorageLocation(
                bucket=scope.bucket,
                region=scope.region,
                endpoint=scope.endpoint,
                prefix=token_request.prefix,
            ),
            permissions=sorted(_TO_PROTO[p] for p in token_request.permissions),
        )

    async def PresignObject(
        self, request: pb.PresignObjectRequest, context: ServicerContext
    ) -> pb.PresignObjectResponse:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "PresignObject is not implemented in this build of Satchel yet; "
            "use IssueToken for player-scoped credentials",
        )


async def _not_configured(context: ServicerContext, rpc: str) -> NoReturn:
    await context.abort(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"{rpc} cannot be served: this server was started without scopes or STS access",
    )
