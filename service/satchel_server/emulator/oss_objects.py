"""Object operations: Put, Get (Range, response-content-*), Head, GetObjectMeta, Delete,
batch Delete, Copy, and PostObject (browser form upload). Get and Head follow symlinks."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote

from aiohttp import web

from satchel_server.emulator import oss_xml
from satchel_server.emulator.accounts import Bucket
from satchel_server.emulator.errors import OssError
from satchel_server.emulator.oss_addressing import check_key
from satchel_server.emulator.oss_attributes import ACL_HEADER, check_acl, upload_extras
from satchel_server.emulator.oss_auth import authenticate_post
from satchel_server.emulator.oss_call import (
    DEFAULT_CONTENT_TYPE,
    OssCall,
    b64md5,
    check_md5,
    forbids_overwrite,
    object_headers,
    xml_response,
)
from satchel_server.emulator.oss_post import PostForm, read_post_form
from satchel_server.emulator.store import DEFAULT_ACL, Extras, ObjectMeta

RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


async def put_object(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    headers = call.request.headers
    extras = upload_extras(call, headers, key=call.key, content_type=DEFAULT_CONTENT_TYPE)
    data = await call.body()
    check_md5(call.request, data)
    meta = call.state.store.put(
        call.bucket.name,
        call.key,
        data,
        extras=extras,
        now=call.now,
        forbid_overwrite=forbids_overwrite(headers),
    )
    return web.Response(headers={"ETag": meta.etag, "Content-MD5": b64md5(data)})


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive; None when the header is malformed (OSS then sends it all)."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first_s, dash, last_s = spec.strip().partition("-")
    if not dash or not (first_s.isdigit() or last_s.isdigit()):
        return None
    if not first_s:
        length = int(last_s)
        return (max(size - length, 0), size - 1) if length else None
    first = int(first_s)
    last = int(last_s) if last_s.isdigit() else size - 1
    if last_s and last < first:
        return None
    if first >= size:
        raise OssError("InvalidRange")
    return first, min(last, size - 1)


def _followed(call: OssCall, meta: ObjectMeta) -> ObjectMeta:
    """A symlink's target (one hop, read with oss:GetObject too); any other object itself."""
    if meta.symlink_target is None:
        return meta
    call.authorize("oss:GetObject", meta.symlink_target)
    target = call.state.store.head(call.bucket.name, meta.symlink_target)
    if target.symlink_target is not None:
        raise OssError("NoSuchKey", "The symlink's target is itself a symlink.")
    return target


async def get_object(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    meta = _followed(call, call.state.store.head(call.bucket.name, call.key))
    meta, data = call.state.store.get(call.bucket.name, meta.key)
    headers = object_headers(meta)
    for param, header in RESPONSE_OVERRIDES.items():
        value = call.target.param(param)
        if value is not None:
            headers[header] = value
    status = 200
    range_header = call.request.headers.get("Range")
    if range_header and meta.size:
        span = parse_range(range_header, meta.size)
        if span is not None:
            first, last = span
            data = data[first : last + 1]
            headers["Content-Range"] = f"bytes {first}-{last}/{meta.size}"
            status = 206
    return web.Response(status=status, body=data, headers=headers)


async def head_object(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    meta = _followed(call, call.state.store.head(call.bucket.name, call.key))
    headers = object_headers(meta)
    headers["Content-Length"] = str(meta.size)
    return web.Response(headers=headers)


async def get_object_meta(call: OssCall) -> web.StreamResponse:
    """HEAD ?objectMeta: ETag, size and Last-Modified only (of the object itself)."""
    call.authorize(call.action, call.key)
    meta = call.state.store.head(call.bucket.name, call.key)
    return web.Response(
        headers={
            "ETag": meta.etag,
            "Content-Length": str(meta.size),
            "Last-Modified": oss_xml.http_date(meta.last_modified),
        }
    )


async def delete_object(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    call.state.store.delete(call.bucket.name, call.key)
    return web.Response(status=204)


async def delete_multiple(call: OssCall) -> web.StreamResponse:
    body = await call.body()
    if "Content-MD5" not in call.request.headers:
        raise OssError("InvalidDigest", "Missing required header for this request: Content-MD5")
    check_md5(call.request, body)
    keys, quiet = oss_xml.parse_delete(body)
    enc = call.enc()
    decoded = [unquote(k) if enc.url else k for k in keys]
    # Checked all at once: a request that may not delete every key deletes none.
    for key in decoded:
        call.authorize(call.action, check_key(key))
    for key in decoded:
        call.state.store.delete(call.bucket.name, key)
    return xml_response(oss_xml.delete_result([] if quiet else decoded, enc))


def copy_source(call: OssCall) -> tuple[Bucket, str]:
    """The bucket and key `x-oss-copy-source` (`/bucket/url-encoded-key`) names."""
    raw = call.request.headers["x-oss-copy-source"]
    path, _, query = raw.partition("?")
    if query:
        raise OssError("NotImplemented", "The emulator keeps no versions: no versionId.")
    bucket_name, _, key = unquote(path).lstrip("/").partition("/")
    bucket = call.state.directory.bucket(bucket_name)
    if bucket is None:
        raise OssError("NoSuchBucket")
    return bucket, check_key(key)


def _replaces(headers: Mapping[str, str], directive: str) -> bool:
    return headers.get(directive, "COPY").upper() == "REPLACE"


async def copy_object(call: OssCall) -> web.StreamResponse:
    src_bucket, src_key = copy_source(call)
    call.authorize("oss:GetObject", src_key, bucket=src_bucket)
    call.authorize(call.action, call.key)
    headers = call.request.headers
    src_meta = call.state.store.head(src_bucket.name, src_key)
    given = upload_extras(call, headers, key=call.key, content_type=src_meta.content_type)
    replace_meta = _replaces(headers, "x-oss-metadata-directive")
    tags = given.tags
    if not _replaces(headers, "x-oss-tagging-directive"):
        tags = src_meta.tags
        if tags:
            # The copy reads the source's tags and writes them on the target.
            call.authorize("oss:GetObjectTagging", src_key, bucket=src_bucket)
            call.authorize("oss:PutObjectTagging", call.key)
    extras = Extras(
        content_type=given.content_type if replace_meta else src_meta.content_type,
        user_meta=given.user_meta if replace_meta else src_meta.user_meta,
        acl=given.acl,
        tags=tags,
    )
    # A symlink is copied as a symlink, as OSS does (never the bytes it points to).
    _, data = call.state.store.get(src_bucket.name, src_key)
    meta = call.state.store.put(
        call.bucket.name,
        call.key,
        data,
        extras=extras,
        now=call.now,
        forbid_overwrite=forbids_overwrite(headers),
        symlink_target=src_meta.symlink_target,
    )
    return xml_response(oss_xml.copy_result(meta))


async def post_object(call: OssCall) -> web.StreamResponse:
    form: PostForm = await read_post_form(call.request, call.state.config.max_body_bytes)
    # The form names the bucket only through the URL; a field that tries to name another
    # one is refused rather than ignored, so nothing can be written where it was not checked.
    field_bucket = form.field("bucket")
    if field_bucket is not None and field_bucket != call.bucket.name:
        raise OssError("AccessDenied", "Invalid according to Policy: Policy Condition failed.")
    call.principal = authenticate_post(call.state, call.bucket, form, call.now)
    key = check_key(form.key())
    call.authorize(call.action, key)
    acl = form.field(ACL_HEADER)
    extras = Extras(
        content_type=form.field("Content-Type") or DEFAULT_CONTENT_TYPE,
        user_meta={
            k[len("x-oss-meta-") :]: v
            for k, v in form.fields.items()
            if k.startswith("x-oss-meta-")
        },
        acl=DEFAULT_ACL if acl is None else check_acl(acl),
    )
    meta = call.state.store.put(
        call.bucket.name,
        key,
        form.file_data,
        extras=extras,
        now=call.now,
        forbid_overwrite=(form.field("x-oss-forbid-overwrite") or "").lower() == "true",
    )
    status = form.field("success_action_status") or "204"
    location = f"http://{call.request.host}/{call.bucket.name}/{key}"
    headers = {"ETag": meta.etag, "Location": location}
    if status == "201":
        return web.Response(
            status=201,
            body=oss_xml.post_result(call.bucket.name, meta, location),
            content_type="application/xml",
            headers=headers,
        )
    return web.Response(status=200 if status == "200" else 204, headers=headers)
