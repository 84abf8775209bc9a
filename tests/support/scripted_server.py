"""A TokenService that fails on a script, for the client's retry, metadata and TLS tests.

Each call pops the next scripted failure (a status, optionally a RetryInfo delay) and aborts
with it, the way Satchel does (details in the `grpc-status-details-bin` trailer); when the
script is empty it answers. Every call's metadata is recorded, with the moment it arrived.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc

EXPIRATION = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass(frozen=True)
class Failure:
    code: grpc.StatusCode
    retry_delay: timedelta | None = None
    field: str | None = None
    # gRPC's own server pushback trailer, which its retry policy honours (RetryInfo it ignores).
    pushback_ms: int | None = None


@dataclass
class Arrival:
    at: float
    metadata: dict[str, str]


def status_of(failure: Failure, message: str = "scripted failure") -> grpc.Status:
    details = []
    if failure.field is not None:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=failure.field, description="scripted rule"
        )
        packed = any_pb2.Any()
        packed.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
        details.append(packed)
    if failure.retry_delay is not None:
        delay = duration_pb2.Duration()
        delay.FromTimedelta(failure.retry_delay)
        packed = any_pb2.Any()
        packed.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        details.append(packed)
    status = status_pb2.Status(
        code=getattr(code_pb2, failure.code.name), message=message, details=details
    )
    return rpc_status.to_status(status)


def token_reply(player: str) -> pb.IssueTokenResponse:
    reply = pb.IssueTokenResponse(
        credentials=pb.Credentials(
            access_key_id="STS.scripted", access_key_secret="s3cr3t", security_token="t0k3n"
        ),
        location=pb.StorageLocation(
            bucket="b",
            region="cn-hangzhou",
            endpoint="https://oss.example",
            prefix=f"players/{player}/",
        ),
        permissions=[pb.PERMISSION_READ],
    )
    reply.credentials.expiration.FromDatetime(EXPIRATION)
    return reply


@dataclass
class ScriptedService(pb_grpc.TokenServiceServicer):
    script: list[Failure] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)

    async def _next(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        self.arrivals.append(Arrival(time.monotonic(), metadata))
        if self.script:
            failure = self.script.pop(0)
            status = status_of(failure)
            trailers = tuple(status.trailing_metadata)
            if failure.pushback_ms is not None:
                trailers += (("grpc-retry-pushback-ms", str(failure.pushback_ms)),)
            await context.abort(status.code, status.details, trailers)

    async def IssueToken(
        self, request: pb.IssueTokenRequest, context: Any
    ) -> pb.IssueTokenResponse:
        await self._next(context)
        return token_reply(request.player_id)

    async def PresignObject(
        self, request: pb.PresignObjectRequest, context: Any
    ) -> pb.PresignObjectResponse:
        await self._next(context)
        reply = pb.PresignObjectResponse(
            url="https://oss.example/k?signature=secret", method=request.method, key=request.key
        )
        reply.expiration.FromDatetime(EXPIRATION)
        return reply


@asynccontextmanager
async def scripted_server(
    service: ScriptedService, credentials: grpc.ServerCredentials | None = None
) -> AsyncIterator[str]:
    """Serve `service` on 127.0.0.1:0 (TLS when `credentials` are given); yield the address."""
    server = grpc.aio.server()
    pb_grpc.add_TokenServiceServicer_to_server(service, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)
