"""A game server's storage endpoints (aiohttp): authenticate the player, ask Satchel, answer.

    GET  /oss/token     the STS app server JSON that Alibaba's mobile OSS SDKs read
                        (StatusCode, AccessKeyId, AccessKeySecret, SecurityToken, Expiration,
                        plus Bucket, Endpoint, Region, Prefix)
    POST /oss/presign   {"key": "saves/slot1.dat", "method": "PUT", "content_length": 17,
                         "content_type": "..."}
                        one presigned URL (GET, PUT of exactly that size) or size-capped
                        POST form

The player's device never talks to Satchel, and never holds the studio's keys: it proves who
it is to this server, which decides what the player may do and asks Satchel for exactly that.

Run beside `satchel dev`:
    python examples/game_server.py --satchel 127.0.0.1:50051 --listen 127.0.0.1:8080
Satchel's API key, when the server wants one, comes from $SATCHEL_API_KEY.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

import satchel

# ---------------------------------------------------------------------------------------------
# STUB IDENTITY: a fixed table of demo sessions. A real game server verifies its own session
# tokens or JWTs here (signature, expiry, revocation). Never ship this table.
DEMO_SESSIONS = {"session-alice": "alice", "session-bob": "bob"}


def authenticate(request: web.Request) -> str:
    """The player behind the request's `Authorization: Bearer <session>` header (STUB)."""
    scheme, _, session = request.headers.get("Authorization", "").partition(" ")
    player = DEMO_SESSIONS.get(session) if scheme.lower() == "bearer" else None
    if player is None:
        raise web.HTTPUnauthorized(text="unknown session")
    return player


# ---------------------------------------------------------------------------------------------
# What a player may do: the game's decision, not the device's. Saves live under saves/.
TOKEN_PERMISSIONS = (satchel.Permission.READ, satchel.Permission.WRITE, satchel.Permission.LIST)
PRESIGN_METHODS = {"GET", "PUT", "POST"}
MAX_SAVE_BYTES = 64 * 1024  # no upload is bigger: a PUT's signed size, a POST form's cap

SATCHEL: web.AppKey[satchel.Client] = web.AppKey("satchel", satchel.Client)


def _failure(error: satchel.SatchelError) -> web.Response:
    """A Satchel error as the body the mobile SDKs understand (they read ErrorCode and
    ErrorMessage when StatusCode is not 200), with an HTTP status to match."""
    if isinstance(error, satchel.InvalidArgumentError):
        status = 400
    elif error.retryable:
        status = 503
    else:
        status = 502
    headers = {}
    if error.retry_delay is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_delay.total_seconds())))
    body = {"StatusCode": str(status), "ErrorCode": error.code.name, "ErrorMessage": error.message}
    return web.json_response(body, status=status, headers=headers)


async def token(request: web.Request) -> web.Response:
    player = authenticate(request)
    try:
        issued = await request.app[SATCHEL].issue_token(player, TOKEN_PERMISSIONS)
    except satchel.SatchelError as error:
        return _failure(error)
    return web.json_response(issued.sts_server_response())


async def presign(request: web.Request) -> web.Response:
    player = authenticate(request)
    try:
        body: dict[str, Any] = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="expected a JSON object") from None
    key, method = str(body.get("key", "")), str(body.get("method", "")).upper()
    if not key.startswith("saves/") or method not in PRESIGN_METHODS:
        raise web.HTTPBadRequest(text="key must start with saves/; method is GET, PUT or POST")
    # A PUT URL signs the body's exact size, so the device says it up front.
    length = body.get("content_length") if method == "PUT" else None
    if method == "PUT" and not (type(length) is int and 0 <= length <= MAX_SAVE_BYTES):
        raise web.HTTPBadRequest(text=f"a PUT needs content_length, 0..{MAX_SAVE_BYTES} bytes")
    try:
        presigned = await request.app[SATCHEL].presign(
            player,
            key,
            method,
            content_type=str(body.get("content_type", "")),
            max_size=MAX_SAVE_BYTES if method == "POST" else 0,
            content_length=length,
        )
    except satchel.SatchelError as error:
        return _failure(error)
    return web.json_response(presigned.to_dict())


def make_app(satchel_target: str, api_key: str | None = None) -> web.Application:
    app = web.Application()

    async def satchel_client(app: web.Application) -> AsyncIterator[None]:
        # One client for the process, opened inside the server's event loop.
        async with satchel.Client(satchel_target, api_key=api_key) as client:
            app[SATCHEL] = client
            yield

    app.cleanup_ctx.append(satchel_client)
    app.router.add_get("/oss/token", token)
    app.router.add_post("/oss/presign", presign)
    return app


async def serve(satchel_target: str, host: str, port: int) -> None:
    runner = web.AppRunner(make_app(satchel_target, os.environ.get("SATCHEL_API_KEY")))
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    print(f"game server listening on {bound_host}:{bound_port}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--satchel", default="127.0.0.1:50051", help="Satchel's HOST:PORT")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT to serve on")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    asyncio.run(serve(args.satchel, host, int(port)))


if __name__ == "__main__":
    main()
