"""Reading a request body with a size cap, refusing as soon as the cap is passed."""

from __future__ import annotations

from aiohttp import web

_CHUNK = 1 << 16


class BodyTooLarge(Exception):
    """The body (declared or received) is larger than the cap."""


async def read_capped(request: web.Request, cap: int) -> bytes:
    if request.content_length is not None and request.content_length > cap:
        raise BodyTooLarge
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        total += len(chunk)
        if total > cap:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
