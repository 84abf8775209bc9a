"""Multipart upload: Initiate, UploadPart, UploadPartCopy, Complete, Abort, ListParts,
ListMultipartUploads."""

from __future__ import annotations

from aiohttp import web

from satchel_server.emulator import oss_xml
from satchel_server.emulator.errors import OssError
from satchel_server.emulator.oss_attributes import upload_extras
from satchel_server.emulator.oss_call import (
    DEFAULT_CONTENT_TYPE,
    OssCall,
    b64md5,
    check_md5,
    int_param,
    xml_response,
)
from satchel_server.emulator.oss_objects import copy_source
from satchel_server.emulator.store import MAX_PART_NUMBER


async def initiate_upload(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    extras = upload_extras(
        call, call.request.headers, key=call.key, content_type=DEFAULT_CONTENT_TYPE
    )
    upload = call.state.store.initiate(call.bucket.name, call.key, extras=extras, now=call.now)
    return xml_response(oss_xml.initiate_result(call.bucket.name, upload, call.enc()))


def _upload_for_key(call: OssCall) -> str:
    upload_id = call.target.param("uploadId") or ""
    if call.state.store.upload(call.bucket.name, upload_id).key != call.key:
        raise OssError("NoSuchUpload")
    return upload_id


async def upload_part(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    number = int_param(call, "partNumber", 0, 1, MAX_PART_NUMBER)
    upload_id = _upload_for_key(call)
    data = await call.body()
    check_md5(call.request, data)
    part = call.state.store.upload_part(call.bucket.name, upload_id, number, data, call.now)
    return web.Response(headers={"ETag": part.etag, "Content-MD5": b64md5(data)})


def copy_range(header: str | None, size: int) -> tuple[int, int]:
    """[start, end) of `bytes=first-last` (`last` inclusive, or the end when omitted), or
    of the whole source when there is no header."""
    if header is None:
        return 0, size
    unit, _, spec = header.partition("=")
    first, dash, last = spec.partition("-")
    if unit != "bytes" or not dash or not first.isdigit() or not (last.isdigit() or not last):
        raise OssError("InvalidArgument", "x-oss-copy-source-range must be bytes=first-last.")
    end = int(last) + 1 if last else size
    if not int(first) < end <= size:
        raise OssError("InvalidRange")
    return int(first), end


async def upload_part_copy(call: OssCall) -> web.StreamResponse:
    """A part made of the source's bytes (or a range of them), read with oss:GetObject."""
    src_bucket, src_key = copy_source(call)
    call.authorize("oss:GetObject", src_key, bucket=src_bucket)
    call.authorize(call.action, call.key)
    number = int_param(call, "partNumber", 0, 1, MAX_PART_NUMBER)
    upload_id = _upload_for_key(call)
    src_meta, data = call.state.store.get(src_bucket.name, src_key)
    if src_meta.symlink_target is not None:
        raise OssError("InvalidArgument", "A symlink cannot be the source of a part copy.")
    start, end = copy_range(call.request.headers.get("x-oss-copy-source-range"), len(data))
    part = call.state.store.upload_part(
        call.bucket.name, upload_id, number, data[start:end], call.now
    )
    # The part's ETag comes in the CopyPartResult body and, as oss2 reads it, a header.
    response = xml_response(oss_xml.copy_part_result(part))
    response.headers["ETag"] = part.etag
    return response


async def complete_upload(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    upload_id = _upload_for_key(call)
    body = await call.body()
    if call.request.headers.get("x-oss-complete-all", "").lower() == "yes":
        if body:
            raise OssError("InvalidArgument", "x-oss-complete-all forbids a part list.")
        parts = [
            (p.number, p.etag) for p in call.state.store.list_parts(call.bucket.name, upload_id)
        ]
    else:
        parts = oss_xml.parse_complete(body)
    meta = call.state.store.complete(call.bucket.name, upload_id, parts, call.now)
    location = f"http://{call.request.host}/{call.bucket.name}/{meta.key}"
    return web.Response(
        body=oss_xml.complete_result(call.bucket.name, meta, location, call.enc()),
        content_type="application/xml",
        headers={"ETag": meta.etag},
    )


async def abort_upload(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    call.state.store.abort(call.bucket.name, _upload_for_key(call))
    return web.Response(status=204)


async def list_parts(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    upload_id = _upload_for_key(call)
    upload = call.state.store.upload(call.bucket.name, upload_id)
    marker = int_param(call, "part-number-marker", 0, 0, MAX_PART_NUMBER)
    max_parts = int_param(call, "max-parts", 1000, 1, 1000)
    parts = [
        p for p in call.state.store.list_parts(call.bucket.name, upload_id) if p.number > marker
    ]
    body = oss_xml.list_parts_result(
        call.bucket.name,
        upload,
        parts[:max_parts],
        marker=marker,
        max_parts=max_parts,
        truncated=len(parts) > max_parts,
        enc=call.enc(),
    )
    return xml_response(body)


async def list_uploads(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, None)
    prefix = call.target.param("prefix") or ""
    max_uploads = int_param(call, "max-uploads", 1000, 1, 1000)
    uploads = [
        u for u in call.state.store.list_uploads(call.bucket.name) if u.key.startswith(prefix)
    ]
    body = oss_xml.list_uploads_result(
        call.bucket.name,
        uploads[:max_uploads],
        prefix=prefix,
        max_uploads=max_uploads,
        enc=call.enc(),
    )
    return xml_response(body)
