"""TokenService: translates between protobuf messages and the domain.

Both RPCs answer UNIMPLEMENTED until the IssueToken and PresignObject issues
land: a clear status beats a fake response that a caller might trust.
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc

ServicerContext = grpc.aio.ServicerContext[Any, Any]


class TokenService(pb_grpc.TokenServiceServicer):
    async def IssueToken(
        self, request: pb.IssueTokenRequest, context: ServicerContext
    ) -> pb.IssueTokenResponse:
        await _not_yet(context, "IssueToken")

    async def PresignObject(
        self, request: pb.PresignObjectRequest, context: ServicerContext
    ) -> pb.PresignObjectResponse:
        await _not_yet(context, "PresignObject")


async def _not_yet(context: ServicerContext, rpc: str) -> NoReturn:
    await context.abort(
        grpc.StatusCode.UNIMPLEMENTED,
        f"{rpc} is not implemented in this build of Satchel yet; "
        "the server is up and its health and reflection services answer",
    )
