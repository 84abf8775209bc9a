"""The OSS listener: an aiohttp.web app answering the object API the SDKs use.

Every request: fault injection → bucket and key from host and raw path → signature (header,
presigned query, or POST form) → RAM check for STS sessions → the operation. Every error is
an `OssError` rendered once, in `_error_response`.
"""

from __future__ import annotations

import base64

from aiohttp import web

from satchel_server.emulator.errors import OssError, render_oss_error
from satchel_server.emulator.faults import fault_middleware
from satchel_server.emulator.oss_addressing import Target, parse_target
from satchel_server.emulator.oss_auth import authenticate
from satchel_server.emulator.oss_call import Handler, OssCall
from satchel_server.emulator.oss_listing import list_objects
from satchel_server.emulator.oss_multipart import (
    abort_upload,
    complete_upload,
    initiate_upload,
    list_parts,
    list_uploads,
    upload_part,
)
from satchel_server.emulator.oss_objects import (
    copy_object,
    delete_multiple,
    delete_object,
    get_object,
    head_object,
    post_object,
    put_object,
)
from satchel_server.emulator.state import EmulatorState, new_request_id

STATE_KEY = web.AppKey("state", EmulatorState)
# Bucket-level sub-resources this emulator does not implement: answered, never misread.
_UNSUPPORTED_BUCKET_PARAMS = frozenset(
    {
        "acl",
        "location",
        "bucketInfo",
        "cors",
        "lifecycle",
        "logging",
        "website",
        "referer",
        "policy",
        "tagging",
        "versioning",
        "versions",
        "stat",
        "encryption",
        "worm",
    }
)


def _route_bucket(method: str, target: Target, request: web.Request) -> Handler:
    if method == "GET":
        if target.has("uploads"):
            return list_uploads
        if any(target.has(p) for p in _UNSUPPORTED_BUCKET_PARAMS):
            raise OssError("NotImplemented", "This bucket operation is not emulated.")
        return list_objects
    if method == "POST" and target.has("delete"):
        return delete_multiple
    if method == "POST" and request.content_type == "multipart/form-data":
        return post_object
    raise OssError("MethodNotAllowed")


def _route(method: str, target: Target, request: web.Request) -> Handler:
    if target.key is None:
        return _route_bucket(method, target, request)
    multipart = target.has("uploadId")
    routes: dict[str, Handler] = {
        "PUT": upload_part
        if multipart
        else copy_object
        if "x-oss-copy-source" in request.headers
        else put_object,
        "GET": list_parts if multipart else get_object,
        "HEAD": head_object,
        "DELETE": abort_upload if multipart else delete_object,
    }
    if method == "POST" and target.has("uploads"):
        return initiate_upload
    if method == "POST" and multipart:
        return complete_upload
    handler = routes.get(method)
    if handler is None:
        raise OssError("MethodNotAllowed")
    return handler


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
        handler = _route(request.method, target, request)
        call = OssCall(state, request, target, bucket)
        if handler is not post_object:
            call.principal = authenticate(state, request, target, call.now)
        response = await handler(call)
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
