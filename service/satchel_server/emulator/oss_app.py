"""The OSS listener: an aiohttp.web app answering the object API the SDKs use.

Every request: fault injection → bucket and key from host and raw path → the operation its
method and sub-resource name (`oss_routes`) → signature (header, presigned query, or POST
form) → RAM check for STS sessions → the operation. Every error is
an `OssError` rendered once, in `_error_response`.
"""

from __future__ import annotations

import base64

from aiohttp import web

from satchel_server.emulator.errors import OssError, render_oss_error
from satchel_server.emulator.faults import fault_middleware
from satchel_server.emulator.oss_addressing import parse_target
from satchel_server.emulator.oss_auth import authenticate
from satchel_server.emulator.oss_call import OssCall
from satchel_server.emulator.oss_objects import post_object
from satchel_server.emulator.oss_routes import COPY_SOURCE_HEADER, resolve
from satchel_server.emulator.state import EmulatorState, new_request_id

STATE_KEY = web.AppKey("state", EmulatorState)


def _error_response(error: OssError, request: web.Request, request_id: str) -> web.Response:
    rendered = render_oss_error(error, request_id, request.host)
    if request.method == "HEAD":
        # HEAD answers carry no body; OSS sends the error document Base64-encoded in a header.
        encoded = base64.b64encode(rendered.body).decode()
        return web.Response(status=rendered.status, headers={"x-oss-err": encoded})
    return web.Response(
        status=rendered.status, body=rendered.body, content_type=rendered.content_type
    )


async def handle(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    request_id = new_request_id()
    try:
        target = parse_target(request.host, request.raw_path, state.directory.buckets)
        if target.bucket is None:
            raise OssError("NotImplemented", "Service-level operations are not emulated.")
        bucket = state.directory.bucket(target.bucket)
        if bucket is None:
            raise OssError("NoSuchBucket")
        route = resolve(request.method, target, COPY_SOURCE_HEADER in request.headers)
        call = OssCall(state, request, target, bucket, route.action)
        if route.handler is not post_object:
            call.principal = authenticate(state, request, target, call.now)
        response = await route.handler(call)
    except OssError as error:
        response = _error_response(error, request, request_id)
    response.headers["x-oss-request-id"] = request_id
    response.headers["Server"] = "AliyunOSS"
    return response


def _fault_error(request: web.Request, status: int, throttle: bool) -> web.StreamResponse:
    code = "ServiceUnavailable" if throttle or status == 503 else "InternalError"
    error = OssError(code, status=503 if throttle else status)
    return _error_response(error, request, new_request_id())


def build_oss_app(state: EmulatorState) -> web.Application:
    app = web.Application(
        middlewares=[fault_middleware(state.faults, "oss", _fault_error)],
        # The body cap is enforced (as EntityTooLarge) by our own reader, not aiohttp's.
        client_max_size=state.config.max_body_bytes + (1 << 20),
    )
    app[STATE_KEY] = state
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
