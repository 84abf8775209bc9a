"""TokenService: translates between protobuf messages and the domain, nothing more.

Each handler runs inside the call pipeline (api.pipeline), validates its request
once (rules.scopes), lets admission decide (access.admission), asks the broker
or the presigner, and answers with one response message. Errors are domain
errors; the pipeline turns them into statuses. PresignObjects does the same once
for its player and scope, then per item; an item's error becomes that item's
status in the response, and the call goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from satchel_server.access.admission import Admission
from satchel_server.access.audit import CallRecord, ItemRecord
from satchel_server.api.pipeline import CallPipeline, ServicerContext, log_refusal
from satchel_server.api.status import map_error, status_message
from satchel_server.config import ScopeSettings
from satchel_server.credentials.broker import CredentialBroker
from satchel_server.errors import DomainError, InvalidArgument, NotConfigured
from satchel_server.presigning.presigner import PresignedObject, Presigner
from satchel_server.presigning.quota import FolderQuotas
from satchel_server.rules.scopes import (
    PresignRequest,
    PresignSubject,
    check_item_count,
    validate_presign_item,
    validate_presign_request,
    validate_presign_subject,
    validate_token_request,
)
from satchel_server.vocabulary import (
    METHOD_FROM_WIRE,
    PERMISSION_FROM_WIRE,
    PERMISSION_TO_WIRE,
    PlayerPermission,
)

_KNOWN_PERMISSIONS = ", ".join(pb.Permission.Name(value) for value in PERMISSION_FROM_WIRE)


def permissions_from_proto(values: Iterable[pb.Permission.ValueType]) -> list[PlayerPermission]:
    try:
        return [PERMISSION_FROM_WIRE[value] for value in values]
    except KeyError:
        raise InvalidArgument(
            "permissions", f"holds a value that is not one of {_KNOWN_PERMISSIONS}"
        ) from None


def deadline_of(context: ServicerContext, cap_seconds: float) -> float:
    """The caller's deadline as event-loop time, never further away than `cap_seconds`.

    A caller with no deadline, or a very long one, must not hold STS calls and
    server resources open indefinitely.
    """
    # grpc.aio returns None when the caller set no deadline (the stubs say float).
    remaining: float | None = context.time_remaining()
    allowed = cap_seconds if remaining is None else min(remaining, cap_seconds)
    return asyncio.get_running_loop().time() + allowed


def _seconds(duration: Duration) -> float:
    return duration.ToTimedelta().total_seconds()


class TokenService(pb_grpc.TokenServiceServicer):
    """IssueToken, PresignObject(s); register with `pb_grpc.add_TokenServiceServicer_to_server`.

    A server built without a broker or a presigner answers that RPC FAILED_PRECONDITION.
    """

    def __init__(
        self,
        scopes: Mapping[str, ScopeSettings] | None = None,
        broker: CredentialBroker | None = None,
        presigner: Presigner | None = None,
        *,
        admission: Admission | None = None,
        pipeline: CallPipeline | None = None,
        max_deadline_seconds: float = 30.0,
        quotas: FolderQuotas | None = None,
    ) -> None:
        self._scopes = scopes or {}
        self._broker = broker
        self._presigner = presigner
        self._quotas = quotas
        self._admission = admission or Admission.open()
        self._pipeline = pipeline or CallPipeline()
        self._max_deadline_seconds = max_deadline_seconds

    def ready(self) -> bool:
        """True once presigning credentials are held for every scope (health's SERVING)."""
        return self._presigner is None or self._presigner.ready

    async def IssueToken(
        self, request: pb.IssueTokenRequest, context: ServicerContext
    ) -> pb.IssueTokenResponse:
        async with self._pipeline.call("IssueToken", context) as call:
            if self._broker is None:
                raise NotConfigured("IssueToken")
            validated = validate_token_request(
                self._scopes,
                scope_name=request.scope,
                player_id=request.player_id,
                permissions=permissions_from_proto(request.permissions),
                ttl_seconds=_seconds(request.ttl) if request.HasField("ttl") else None,
            )
            self._admission.admit(call, validated)
            issued = await self._broker.credentials_for(
                validated, deadline=deadline_of(context, self._max_deadline_seconds)
            )
            credentials = issued.credentials
            call.handed_out(
                credentials.expiration,
                access_key_id=credentials.access_key_id,
                sts_request_id=issued.request_id,
                from_cache=issued.from_cache,
            )
            expiration = Timestamp()
            expiration.FromDatetime(credentials.expiration)
            return pb.IssueTokenResponse(
                credentials=pb.Credentials(
                    access_key_id=credentials.access_key_id,
                    access_key_secret=credentials.access_key_secret,
                    security_token=credentials.security_token,
                    expiration=expiration,
                ),
                location=self._location(validated.scope.name, validated.prefix),
                permissions=sorted(PERMISSION_TO_WIRE[p] for p in validated.permissions),
            )

    async def PresignObject(
        self, request: pb.PresignObjectRequest, context: ServicerContext
    ) -> pb.PresignObjectResponse:
        async with self._pipeline.call("PresignObject", context) as call:
            if self._presigner is None:
                raise NotConfigured("PresignObject")
            expires = _seconds(request.expires_in) if request.HasField("expires_in") else None
            validated = validate_presign_request(
                self._scopes,
                scope_name=request.scope,
                player_id=request.player_id,
                key=request.key,
                method=METHOD_FROM_WIRE.get(request.method),
                expires_seconds=expires,
                content_type=request.content_type,
                max_size=request.max_size,
                forbid_overwrite=request.forbid_overwrite,
                content_length=(
                    request.content_length if request.HasField("content_length") else None
                ),
            )
            self._admission.admit(call, validated)
            if self._quotas is not None:
                # An upload to a folder with a quota: allowed (and counted) only if it fits.
                await self._quotas.admit(
                    validated, deadline=deadline_of(context, self._max_deadline_seconds)
                )
            presigned = self._presigner.presign(validated)
            call.handed_out(presigned.expiration)
            return self._presigned(validated, presigned, request.method)

    async def PresignObjects(
        self, request: pb.PresignObjectsRequest, context: ServicerContext
    ) -> pb.PresignObjectsResponse:
        async with self._pipeline.call("PresignObjects", context) as call:
            presigner = self._presigner
            if presigner is None:
                raise NotConfigured("PresignObjects")
            subject = validate_presign_subject(
                self._scopes, scope_name=request.scope, player_id=request.player_id
            )
            check_item_count(len(request.items))
            self._admission.admit_subject(call, subject)
            # Every item is validated and checked against the caller's grant first, so a
            # call none of whose items may proceed spends no rate-limit token.
            admitted = [self._admitted_item(call, subject, item) for item in request.items]
            if any(isinstance(outcome, PresignRequest) for outcome, _ in admitted):
                self._admission.spend(call, subject)
            deadline = deadline_of(context, self._max_deadline_seconds)
            results = [
                await self._item_result(presigner, outcome, record, item.method, deadline)
                for (outcome, record), item in zip(admitted, request.items, strict=True)
            ]
            return pb.PresignObjectsResponse(results=results)

    def _admitted_item(
        self, call: CallRecord, subject: PresignSubject, item: pb.PresignItem
    ) -> tuple[PresignRequest | DomainError, ItemRecord]:
        """The item validated and allowed by the caller's grant, or why it is refused."""
        record = call.item()
        try:
            validated = validate_presign_item(
                subject,
                key=item.key,
                method=METHOD_FROM_WIRE.get(item.method),
                expires_seconds=_seconds(item.expires_in) if item.HasField("expires_in") else None,
                content_type=item.content_type,
                max_size=item.max_size,
                forbid_overwrite=item.forbid_overwrite,
                content_length=item.content_length if item.HasField("content_length") else None,
            )
        except InvalidArgument as error:
            return error.within(f"items[{record.index}]"), record
        record.asked(validated)
        try:
            self._admission.allow_item(call, validated)
        except DomainError as error:
            return error, record
        return validated, record

    async def _item_result(
        self,
        presigner: Presigner,
        outcome: PresignRequest | DomainError,
        record: ItemRecord,
        method: pb.HttpMethod.ValueType,
        deadline: float,
    ) -> pb.PresignResult:
        """The item presigned, or its refusal as a status; either way, noted in its record."""
        if isinstance(outcome, PresignRequest):
            try:
                if self._quotas is not None:
                    # As PresignObject: an upload is allowed (and counted) only if it fits.
                    await self._quotas.admit(outcome, deadline=deadline)
                presigned = presigner.presign(outcome)
            except DomainError as error:
                return self._refused(error, record)
            record.handed_out(presigned.expiration)
            return pb.PresignResult(presigned=self._presigned(outcome, presigned, method))
        return self._refused(outcome, record)

    @staticmethod
    def _refused(error: DomainError, record: ItemRecord) -> pb.PresignResult:
        code = map_error(error).code
        record.refused(error, code.name)
        log_refusal(error, code)
        return pb.PresignResult(error=status_message(error))

    def _presigned(
        self,
        validated: PresignRequest,
        presigned: PresignedObject,
        method: pb.HttpMethod.ValueType,
    ) -> pb.PresignObjectResponse:
        return pb.PresignObjectResponse(
            url=presigned.url,
            method=method,
            headers=presigned.headers,
            form_fields=presigned.form_fields,
            expiration=Timestamp(seconds=presigned.expires_at),
            key=validated.key,
            location=self._location(validated.scope.name, validated.prefix),
        )

    def _location(self, scope_name: str, prefix: str) -> pb.StorageLocation:
        scope = self._scopes[scope_name]
        return pb.StorageLocation(
            bucket=scope.bucket, region=scope.region, endpoint=scope.endpoint, prefix=prefix
        )
