"""One OSS request in flight (`OssCall`) and the helpers every operation shares."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from satchel_server.emulator import oss_xml
from satchel_server.emulator.accounts import Bucket
from satchel_server.emulator.errors import OssError
from satchel_server.emulator.http_body import BodyTooLarge, read_capped
from satchel_server.emulator.oss_access import Principal, authorize, request_context
from satchel_server.emulator.oss_addressing import Target
from satchel_server.emulator.state import EmulatorState
from satchel_server.emulator.store import ObjectMeta

Handler = Callable[["OssCall"], Awaitable[web.StreamResponse]]
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class OssCall:
    """One request in flight: what it targets, who sent it, and helpers for the ops."""

    def __init__(
        self,
        state: EmulatorState,
        request: web.Request,
        target: Target,
        bucket: Bucket,
        action: str,
    ) -> None:
        self.state = state
        self.request = request
        self.target = target
        self.bucket = bucket
        # The RAM action of the operation the request names (its route's).
        self.action = action
        self.now = state.now("oss")
        # Set only by authentication: an unauthenticated call can authorize nothing.
        self.principal: Principal | None = None

    @property
    def key(self) -> str:
        if self.target.key is None:
            raise OssError("InvalidArgument", "This operation needs an object key.")
        return self.target.key

    def authorize(
        self,
        action: str,
        key: str | None,
        extra: Mapping[str, str] | None = None,
        bucket: Bucket | None = None,
    ) -> None:
        """Raise AccessDenied unless the caller may do `action` (on this call's bucket)."""
        if self.principal is None:
            raise OssError("AccessDenied", "Anonymous access is forbidden for this operation.")
        context = request_context(self.request.remote or "", self.now, extra or {})
        authorize(self.principal, bucket or self.bucket, action, key, context)

    def enc(self) -> oss_xml.KeyCodec:
        return oss_xml.KeyCodec(self.target.param("encoding-type") or "")

    async def body(self) -> bytes:
        data = await read_body(self.request, self.state.config.max_body_bytes)
        check_sha256(self.request, data)
        return data


async def read_body(request: web.Request, cap: int) -> bytes:
    try:
        return await read_capped(request, cap)
    except BodyTooLarge:
        raise OssError("EntityTooLarge") from None


def check_md5(request: web.Request, data: bytes) -> None:
    header = request.headers.get("Content-MD5")
    if header is None:
        return
    try:
        expected = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise OssError("InvalidDigest") from exc
    if len(expected) != 16:
        raise OssError("InvalidDigest")
    if hashlib.md5(data, usedforsecurity=False).digest() != expected:
        raise OssError("BadDigest")


def check_sha256(request: web.Request, data: bytes) -> None:
    """A V4 request that signed its payload's hash (not UNSIGNED-PAYLOAD) must match it."""
    declared = request.headers.get("x-oss-content-sha256")
    if declared is None or declared == "UNSIGNED-PAYLOAD":
        return
    if declared.lower() != hashlib.sha256(data).hexdigest():
        raise OssError("BadDigest", "The x-oss-content-sha256 does not match the body.")


def forbids_overwrite(headers: Mapping[str, str]) -> bool:
    return headers.get("x-oss-forbid-overwrite", "").lower() == "true"


def user_meta(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        k.lower()[len("x-oss-meta-") :]: v
        for k, v in headers.items()
        if k.lower().startswith("x-oss-meta-")
    }


def object_headers(meta: ObjectMeta) -> dict[str, str]:
    headers = {
        "ETag": meta.etag,
        "Last-Modified": oss_xml.http_date(meta.last_modified),
        "Content-Type": meta.content_type,
        "x-oss-object-type": meta.object_type,
        "x-oss-storage-class": "Standard",
        "Accept-Ranges": "bytes",
    }
    headers.update({f"x-oss-meta-{k}": v for k, v in meta.user_meta.items()})
    return headers


def xml_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/xml")


def int_param(call: OssCall, name: str, default: int, low: int, high: int) -> int:
    raw = call.target.param(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise OssError("InvalidArgument", f"Argument {name} must be an integer in {low}..{high}.")
    return int(raw)


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
