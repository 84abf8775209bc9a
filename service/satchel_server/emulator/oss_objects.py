"""Object operations: Put, Get (Range, response-content-*), Head, Delete, batch Delete,
Copy, and PostObject (browser form upload)."""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import web

from satchel_server.emulator import oss_xml
from satchel_server.emulator.accounts import Bucket
from satchel_server.emulator.errors import OssError
from satchel_server.emulator.oss_addressing import check_key
from satchel_server.emulator.oss_auth import authenticate_post
from satchel_server.emulator.oss_call import (
    OssCall,
    b64md5,
    check_md5,
    object_headers,
    user_meta,
    xml_response,
)
from satchel_server.emulator.oss_post import PostForm, read_post_form

_RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


async def put_object(call: OssCall) -> web.StreamResponse:
    call.authorize("oss:PutObject", call.key)
    data = await call.body()
    check_md5(call.request, data)
    headers = call.request.headers
    meta = call.state.store.put(
        call.bucket.name,
        call.key,
        data,
        content_type=headers.get("Content-Type", "application/octet-stream"),
        user_meta=user_meta(headers),
        now=call.now,
        forbid_overwrite=headers.get("x-oss-forbid-overwrite", "").lower() == "true",
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


async def get_object(call: OssCall) -> web.StreamResponse:
    call.authorize("oss:GetObject", call.key)
    meta, data = call.state.store.get(call.bucket.name, call.key)
    headers = object_headers(meta)
    for param, header in _RESPONSE_OVERRIDES.items():
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
    call.authorize("oss:GetObject", call.key)
    meta = call.state.store.head(call.bucket.name, call.key)
    headers = object_headers(meta)
    headers["Content-Length"] = str(meta.size)
    return web.Response(headers=headers)


async def delete_object(call: OssCall) -> web.StreamResponse:
    call.authorize("oss:DeleteObject", call.key)
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
        call.authorize("oss:DeleteObject", check_key(key))
    for key in decoded:
        call.state.store.delete(call.bucket.name, key)
    return xml_response(oss_xml.delete_result([] if quiet else decoded, enc))


def _copy_source(call: OssCall) -> tuple[Bucket, str]:
    raw = unquote(call.request.headers["x-oss-copy-source"])
    bucket_name, _, key = raw.lstrip("/").partition("/")
    bucket = call.state.directory.bucket(bucket_name)
    if bucket is None:
        raise OssError("NoSuchBucket")
    return bucket, check_key(key.split("?versionId=")[0])


async def copy_object(call: OssCall) -> web.StreamResponse:
    src_bucket, src_key = _copy_source(call)
    call.authorize("oss:GetObject", src_key, bucket=src_bucket)
    call.authorize("oss:PutObject", call.key)
    src_meta, data = call.state.store.get(src_bucket.name, src_key)
    headers = call.request.headers
    replace = headers.get("x-oss-metadata-directive", "COPY").upper() == "REPLACE"
    meta = call.state.store.put(
        call.bucket.name,
        call.key,
        data,
        content_type=headers.get("Content-Type", src_meta.content_type)
        if replace
        else src_meta.content_type,
        user_meta=user_meta(headers) if replace else src_meta.user_meta,
        now=call.now,
        forbid_overwrite=headers.get("x-oss-forbid-overwrite", "").lower() == "true",
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
    call.authorize("oss:PutObject", key)
    meta = call.state.store.put(
        call.bucket.name,
        key,
        form.file_data,
        content_type=form.field("Content-Type") or "application/octet-stream",
        user_meta={
            k[len("x-oss-meta-") :]: v
            for k, v in form.fields.items()
            if k.startswith("x-oss-meta-")
        },
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
