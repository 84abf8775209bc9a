"""The real server with an IssueToken that takes a while: lets tests catch a call in flight.

Run as a script: `python tests/support/slow_server.py`. It uses the production
factory and the production signal handling; only the servicer is a test double.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from satchel.v1 import token_service_pb2 as pb
from satchel_server.api.pipeline import ServicerContext
from satchel_server.api.server import build_server
from satchel_server.api.servicer import TokenService
from satchel_server.config import ServerSettings

log = logging.getLogger("slow_server")


class SlowTokenService(TokenService):
    """An unconfigured TokenService whose IssueToken takes SLOW_SECONDS and logs when it starts."""

    async def IssueToken(
        self, request: pb.IssueTokenRequest, context: ServicerContext
    ) -> pb.IssueTokenResponse:
        async with self._pipeline.call("IssueToken", context):
            log.info("in flight: IssueToken for %s", request.player_id)
            await asyncio.sleep(float(os.environ.get("SLOW_SECONDS", "2")))
            return pb.IssueTokenResponse(permissions=request.permissions)


async def main() -> None:
    settings = ServerSettings(listen="127.0.0.1:0", grace_seconds=10)
    await build_server(settings, SlowTokenService()).serve_until_signalled()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(main())
