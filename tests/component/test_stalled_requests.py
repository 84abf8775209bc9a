"""A request that never completes: what bounds how long it holds a stream.

grpc has no server setting that bounds a call whose request message never arrives: the
handler (and so `max_deadline_seconds`) only runs once it has. Keepalive does not end it
(the client answers pings), nor `grpc.max_connection_idle_ms` (a connection with an open
stream is not idle). The connection's age does: after `max_connection_age_seconds` the
server sends GOAWAY and, `max_connection_age_grace_seconds` later, closes the connection
with every stream on it. docs/operations.md says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from satchel_server.api.server import build_server
from satchel_server.config import ServerSettings


async def never_sends(stop: asyncio.Event) -> AsyncIterator[bytes]:
    await stop.wait()
    yield b""


@pytest.mark.asyncio
async def test_the_connection_age_ends_a_request_that_never_arrives() -> None:
    # Below the configurable minimum, so the test takes a second, not forty.
    settings = ServerSettings(
        listen="127.0.0.1:0", max_connection_age_seconds=0.4, max_connection_age_grace_seconds=0.4
    )
    built = build_server(settings)
    await built.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        async with grpc.aio.insecure_channel(built.address) as channel:
            issue = channel.stream_unary("/satchel.v1.TokenService/IssueToken")
            started = loop.time()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await asyncio.wait_for(issue(never_sends(stop)), timeout=10)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            # Age (with grpc's +-10% jitter) plus grace, and nothing sooner.
            assert 0.6 <= loop.time() - started < 5
    finally:
        stop.set()
        await built.server.stop(None)
