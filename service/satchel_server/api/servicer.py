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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from satchel.v1 import token_service_pb2 as pb
from satchel_server.access.admission import Admission
from satchel_server.access.audit import current_call
from satchel_server.api.status import abort_with
from satchel_server.api.wire import WireBehavior
from satchel_server.config import ScopeSettings
from satchel_server.credentials.broker import CredentialBroker
from satchel_server.credentials.types import TemporaryCredentials
from satchel_server.errors import InternalFault, InvalidArgument, SatchelError
from satchel_server.presigning.presigner import Presigner, PresignPlan
from satchel_server.rules.scopes import (
    Method,
    Permission,
    TokenRequest,
    validate_presign_request,
    validate_token_request,
)

ServicerContext = grpc.aio.ServicerContext[Any, Any]
# Validated requests kept for reuse, by their wire bytes (each a few hundred bytes,
# plus an IssueToken request's last encoded answer, about 1.2 KB).
VALIDATIONS_KEPT = 8192
_Message = TypeVar("_Message", pb.IssueTokenRequest, pb.PresignObjectRequest)

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


@functools.lru_cache(maxsize=1024)
def _encoded_expiration(epoch_seconds: int) -> bytes:
    """A PresignObjectResponse's expiration field, encoded: URLs signed in one second share it.

    Encoding a Timestamp message per answer cost as much as encoding the URL.
    """
    return pb.PresignObjectResponse(expiration=Timestamp(seconds=epoch_seconds)).SerializeToString()


def deadline_of(context: ServicerContext, cap_seconds: float) -> float:
    """The caller's deadline as event-loop time, never further away than `cap_seconds`.

    A caller with no deadline, or a very long one, must not hold STS calls and
    server resources open indefinitely.
    """
    # grpc.aio returns None when the caller set no deadline (the stubs say float).
    remaining: float | None = context.time_remaining()
    allowed = cap_seconds if remaining is None else min(remaining, cap_seconds)
    return asyncio.get_running_loop().time() + allowed


@dataclass(slots=True)
class _PreparedIssue:
    """An IssueToken request as validated, and the last answer encoded for it.

    Kept by the request's wire bytes: the same bytes always decode to the same
    request, so a player asking again skips decoding and validation. The answer
    depends only on the request and the credentials handed out, so while the
    broker serves the same credentials object the same bytes go out again.
    """

    request: TokenRequest
    answered_with: TemporaryCredentials | None = None
    answer: bytes = field(default=b"", repr=False)  # carries the secret and the token


@dataclass(frozen=True, slots=True)
class _PreparedPresign:
    """A PresignObject request as validated, and the part of its answer that never changes.

    `answer_tail` is the encoded method, key and location. Encoded protobuf messages
    concatenate into their merge, so each answer is encoded as its URL and headers,
    then its expiry (shared by the answers of a second), then these bytes.
    """

    plan: PresignPlan  # the validated request, and what signing it needs that never changes
    answer_tail: bytes


def _decoded(message_type: type[_Message], data: bytes) -> _Message:
    try:
        return message_type.FromString(data)
    except DecodeError:
        raise InvalidArgument(
            "request", f"is not a valid {message_type.DESCRIPTOR.name} message"
        ) from None


def _seconds(duration: Duration) -> float:
    return duration.ToTimedelta().total_seconds()


class TokenService:
    """TokenService's methods at the wire: each takes the request's bytes, gives the answer's.

    Decoding is this class's job rather than grpc's so that what a request's bytes
    mean is worked out once: a repeated request (the usual case: a player asking
    again) costs one dictionary lookup instead of decoding, reading eight fields
    through protobuf and validating. Register `methods()` with service.api.wire.
    """

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
        # Requests by their wire bytes, validated. Refusals raise and are never kept.
        self._prepared_issue = functools.lru_cache(maxsize=VALIDATIONS_KEPT)(self._prepare_issue)
        self._prepared_presign = functools.lru_cache(maxsize=VALIDATIONS_KEPT)(
            self._prepare_presign
        )

    def methods(self) -> dict[str, WireBehavior]:
        return {"IssueToken": self.issue_token, "PresignObject": self.presign_object}

    def _prepare_issue(self, data: bytes) -> _PreparedIssue:
        if self._broker is None:  # issue_token answers FAILED_PRECONDITION before this
            raise InternalFault("IssueToken prepared without a broker")
        request = _decoded(pb.IssueTokenRequest, data)
        validated = validate_token_request(
            self._scopes,
            scope_name=request.scope,
            player_id=request.player_id,
            permissions=permissions_from_proto(request.permissions),
            ttl_seconds=_seconds(request.ttl) if request.HasField("ttl") else None,
        )
        return _PreparedIssue(validated)

    def _prepare_presign(self, data: bytes) -> _PreparedPresign:
        if self._presigner is None:  # presign_object answers FAILED_PRECONDITION before this
            raise InternalFault("PresignObject prepared without a presigner")
        request = _decoded(pb.PresignObjectRequest, data)
        expires = _seconds(request.expires_in) if request.HasField("expires_in") else None
        validated = validate_presign_request(
            self._scopes,
            scope_name=request.scope,
            player_id=request.player_id,
            key=request.key,
            method=_METHODS.get(request.method),
            expires_seconds=expires,
            content_type=request.content_type,
            max_size=request.max_size,
            forbid_overwrite=request.forbid_overwrite,
        )
        tail = pb.PresignObjectResponse(
            method=request.method,
            key=validated.key,
            location=self._location(validated.scope.name, validated.prefix),
        )
        return _PreparedPresign(self._presigner.plan(validated), tail.SerializeToString())

    def _location(self, scope_name: str, prefix: str) -> pb.StorageLocation:
        scope = self._scopes[scope_name]
        return pb.StorageLocation(
            bucket=scope.bucket, region=scope.region, endpoint=scope.endpoint, prefix=prefix
        )

    def ready(self) -> bool:
        """True once presigning credentials are held for every scope (health's SERVING)."""
        return self._presigner is None or self._presigner.ready

    async def issue_token(self, data: bytes, context: ServicerContext) -> bytes:
        if self._broker is None:
            await _not_configured(context, "IssueToken")
        call = current_call()
        try:
            prepared = self._prepared_issue(data)
            request = prepared.request
            self._admission.admit(call, request)
            issued = await self._broker.credentials_for(
                request, deadline=deadline_of(context, self._max_deadline_seconds)
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
        if prepared.answered_with is not credentials:
            prepared.answer = self._issue_response(credentials, request)
            prepared.answered_with = credentials
        return prepared.answer

    def _issue_response(self, credentials: TemporaryCredentials, request: TokenRequest) -> bytes:
        return pb.IssueTokenResponse(
            credentials=pb.Credentials(
                access_key_id=credentials.access_key_id,
                access_key_secret=credentials.access_key_secret,
                security_token=credentials.security_token,
                expiration=_timestamp(credentials.expiration),
            ),
            location=self._location(request.scope.name, request.prefix),
            permissions=sorted(_TO_PROTO[p] for p in request.permissions),
        ).SerializeToString()

    async def presign_object(self, data: bytes, context: ServicerContext) -> bytes:
        if self._presigner is None:
            await _not_configured(context, "PresignObject")
        call = current_call()
        try:
            prepared = self._prepared_presign(data)
            self._admission.admit(call, prepared.plan.request)
            presigned = self._presigner.presign(prepared.plan)
        except SatchelError as error:
            await abort_with(context, error)
        call.handed_out(presigned.expiration)
        head = pb.PresignObjectResponse(url=presigned.url)
        # Filling a map field goes through Python's MutableMapping.update: skip empty ones.
        if presigned.headers:
            head.headers.update(presigned.headers)
        if presigned.form_fields:
            head.form_fields.update(presigned.form_fields)
        return (
            head.SerializeToString()
            + _encoded_expiration(presigned.expires_at)
            + prepared.answer_tail
        )


async def _not_configured(context: ServicerContext, rpc: str) -> NoReturn:
    await context.abort(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"{rpc} cannot be served: this server was started without scopes or STS access",
    )
