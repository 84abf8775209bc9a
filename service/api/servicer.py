"""TokenService: translates between protobuf messages and the domain, nothing more.

Validation lives in `service.scopes`, authorisation and rate limits in
`service.admission`, caching and STS in `service.broker`, presigning in
`service.presign`, status mapping in `service.api.status`. The call's audit
record (opened by `service.api.pipeline`) learns what was handed out.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from service.admission import Admission
from service.api.status import abort_with
from service.audit import current_call
from service.broker import CredentialBroker
from service.config import ScopeSettings
from service.credentials import TemporaryCredentials
from service.errors import InvalidArgument, SatchelError
from service.presign import Presigner
from service.scopes import (
    Method,
    Permission,
    PresignRequest,
    TokenRequest,
    validate_presign_request,
    validate_token_request,
)

ServicerContext = grpc.aio.ServicerContext[Any, Any]
# Built IssueToken responses kept for reuse (each about 1.5 KB).
RESPONSES_KEPT = 4096
# Validated requests kept for reuse (each a few hundred bytes).
VALIDATIONS_KEPT = 8192
# A PresignObject request's fields, in the order the proto declares them.
PresignFields = tuple[str, str, str, "pb.HttpMethod.ValueType", float | None, str, int, bool]

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


_METHODS: dict[pb.HttpMethod.ValueType, Method] = {
    pb.HTTP_METHOD_GET: Method.GET,
    pb.HTTP_METHOD_PUT: Method.PUT,
    pb.HTTP_METHOD_HEAD: Method.HEAD,
    pb.HTTP_METHOD_DELETE: Method.DELETE,
    pb.HTTP_METHOD_POST: Method.POST,
}


def _timestamp(moment: datetime) -> Timestamp:
    seconds, nanos = _epoch(moment)
    return Timestamp(seconds=seconds, nanos=nanos)


@functools.lru_cache(maxsize=1024)
def _epoch(moment: datetime) -> tuple[int, int]:
    """Seconds and nanos since the epoch: expiries repeat, and this is exact, unlike floats."""
    since = moment - _EPOCH
    return since.days * 86_400 + since.seconds, since.microseconds * 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def deadline_of(context: ServicerContext, cap_seconds: float) -> float:
    """The caller's deadline as event-loop time, never further away than `cap_seconds`.

    A caller with no deadline, or a very long one, must not hold STS calls and
    server resources open indefinitely.
    """
    # grpc.aio returns None when the caller set no deadline (the stubs say float).
    remaining: float | None = context.time_remaining()
    allowed = cap_seconds if remaining is None else min(remaining, cap_seconds)
    return asyncio.get_running_loop().time() + allowed


class TokenService(pb_grpc.TokenServiceServicer):
    def __init__(
        self,
        scopes: Mapping[str, ScopeSettings] | None = None,
        broker: CredentialBroker | None = None,
        presigner: Presigner | None = None,
        admission: Admission | None = None,
        max_deadline_seconds: float = 30.0,
    ) -> None:
        self._scopes = scopes or {}
        self._broker = broker
        self._presigner = presigner
        self._admission = admission or Admission.open()
        self._max_deadline_seconds = max_deadline_seconds
        # Validation is a pure function of a request's fields and the fixed scopes:
        # a player asking again reuses the verdict. Refusals are not kept (they raise).
        self._validated_token_request = functools.lru_cache(maxsize=VALIDATIONS_KEPT)(
            self._validate_token_request
        )
        self._validated_presign_request = functools.lru_cache(maxsize=VALIDATIONS_KEPT)(
            self._validate_presign_request
        )
        # A player's folder, as sent in every response for it (copied into each).
        self._location = functools.lru_cache(maxsize=VALIDATIONS_KEPT)(self._build_location)
        # A cached credential is handed out many times: the message built for it
        # the first time is sent again (grpc only serialises it; nothing mutates it).
        self._issue_response = functools.lru_cache(maxsize=RESPONSES_KEPT)(
            self._build_issue_response
        )

    def _validate_token_request(
        self,
        scope_name: str,
        player_id: str,
        permissions: tuple[pb.Permission.ValueType, ...],
        ttl_seconds: float | None,
    ) -> TokenRequest:
        return validate_token_request(
            self._scopes,
            scope_name=scope_name,
            player_id=player_id,
            permissions=permissions_from_proto(permissions),
            ttl_seconds=ttl_seconds,
        )

    def _validate_presign_request(self, fields: PresignFields) -> PresignRequest:
        scope_name, player_id, key, method, expires, content_type, max_size, forbid = fields
        return validate_presign_request(
            self._scopes,
            scope_name=scope_name,
            player_id=player_id,
            key=key,
            method=_METHODS.get(method),
            expires_seconds=expires,
            content_type=content_type,
            max_size=max_size,
            forbid_overwrite=forbid,
        )

    def _build_location(self, scope_name: str, prefix: str) -> pb.StorageLocation:
        scope = self._scopes[scope_name]
        return pb.StorageLocation(
            bucket=scope.bucket, region=scope.region, endpoint=scope.endpoint, prefix=prefix
        )

    def ready(self) -> bool:
        """True once presigning credentials are held for every scope (health's SERVING)."""
        return self._presigner is None or self._presigner.ready

    async def IssueToken(
        self, request: pb.IssueTokenRequest, context: ServicerContext
    ) -> pb.IssueTokenResponse:
        if self._broker is None:
            await _not_configured(context, "IssueToken")
        call = current_call()
        try:
            token_request = self._validated_token_request(
                request.scope,
                request.player_id,
                tuple(request.permissions),
                request.ttl.ToTimedelta().total_seconds() if request.HasField("ttl") else None,
            )
            self._admission.admit(call, token_request)
            # A hit is answered at once; only a miss needs the caller's deadline.
            issued = self._broker.cached(token_request) or await self._broker.credentials_for(
                token_request, deadline=deadline_of(context, self._max_deadline_seconds)
            )
        except SatchelError as error:
            await abort_with(context, error)
        credentials = issued.credentials
        call.handed_out(
            credentials.expiration,
            access_key_id=credentials.access_key_id,
            sts_request_id=issued.request_id,
            from_cache=issued.from_cache,
        )
        return self._issue_response(
            credentials, token_request.scope.name, token_request.prefix, token_request.permissions
        )

    def _build_issue_response(
        self,
        credentials: TemporaryCredentials,
        scope_name: str,
        prefix: str,
        permissions: frozenset[Permission],
    ) -> pb.IssueTokenResponse:
        return pb.IssueTokenResponse(
            credentials=pb.Credentials(
                access_key_id=credentials.access_key_id,
                access_key_secret=credentials.access_key_secret,
                security_token=credentials.security_token,
                expiration=_timestamp(credentials.expiration),
            ),
            location=self._location(scope_name, prefix),
            permissions=sorted(_TO_PROTO[p] for p in permissions),
        )

    async def PresignObject(
        self, request: pb.PresignObjectRequest, context: ServicerContext
    ) -> pb.PresignObjectResponse:
        if self._presigner is None:
            await _not_configured(context, "PresignObject")
        call = current_call()
        try:
            presign_request = self._validated_presign_request(
                (
                    request.scope,
                    request.player_id,
                    request.key,
                    request.method,
                    (
                        request.expires_in.ToTimedelta().total_seconds()
                        if request.HasField("expires_in")
                        else None
                    ),
                    request.content_type,
                    request.max_size,
                    request.forbid_overwrite,
                )
            )
            self._admission.admit(call, presign_request)
            presigned = self._presigner.presign(presign_request)
        except SatchelError as error:
            await abort_with(context, error)
        call.handed_out(presigned.expiration)
        response = pb.PresignObjectResponse(
            url=presigned.url,
            method=request.method,
            expiration=_timestamp(presigned.expiration),
            key=presign_request.key,
            location=self._location(presign_request.scope.name, presign_request.prefix),
        )
        # Filling a map field goes through Python's MutableMapping.update: skip empty ones.
        if presigned.headers:
            response.headers.update(presigned.headers)
        if presigned.form_fields:
            response.form_fields.update(presigned.form_fields)
        return response


async def _not_configured(context: ServicerContext, rpc: str) -> NoReturn:
    await context.abort(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"{rpc} cannot be served: this server was started without scopes or STS access",
    )
