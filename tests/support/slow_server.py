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
from satchel_server.api.server import build_server
from satchel_server.api.servicer import ServicerContext, TokenService
from satchel_server.api.wire import WireBehavior
from satchel_server.config import ServerSettings

log = logging.getLogger("slow_server")


async def slow_issue_token(data: bytes, context: ServicerContext) -> bytes:
    request = pb.IssueTokenRequest.FromString(data)
    log.info("in flight: IssueToken for %s", request.player_id)
    await asyncio.sleep(float(os.environ.get("SLOW_SECONDS", "2")))
    return pb.IssueTokenResponse(permissions=request.permissions).SerializeToString()


def slow_methods() -> dict[str, WireBehavior]:
    """TokenService's methods with a slow IssueToken (PresignObject as an unconfigured server's)."""
    return {**TokenService().methods(), "IssueToken": slow_issue_token}


async def main() -> None:
    settings = ServerSettings(listen="127.0.0.1:0", grace_seconds=10)
    await build_server(settings, slow_methods()).serve_until_signalled()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(main())
