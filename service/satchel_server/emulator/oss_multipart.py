"""Multipart upload: Initiate, UploadPart, Complete, Abort, ListParts, ListMultipartUploads."""

from __future__ import annotations

from aiohttp import web

from satchel_server.emulator import oss_xml
from satchel_server.emulator.errors import OssError
from satchel_server.emulator.oss_call import (
    OssCall,
    b64md5,
    check_md5,
    int_param,
    user_meta,
    xml_response,
)
from satchel_server.emulator.store import MAX_PART_NUMBER


async def initiate_upload(call: OssCall) -> web.StreamResponse:
    call.authorize("oss:PutObject", call.key)
    headers = call.request.headers
    upload = call.state.store.initiate(
        call.bucket.name,
        call.key,
        content_type=headers.get("Content-Type", "application/octet-stream"),
        user_meta=user_meta(headers),
        now=call.now,
    )
    return xml_response(oss_xml.initiate_result(call.bucket.name, upload, call.enc()))


def _upload_for_key(call: OssCall) -> str:
    upload_id = call.target.param("uploadId") or ""
    if call.state.store.upload(call.bucket.name, upload_id).key != call.key:
        raise OssError("NoSuchUpload")
    return upload_id


async def upload_part(call: OssCall) -> web.StreamResponse:
    call.authorize("oss:PutObject", call.key)
    number = int_param(call, "partNumber", 0, 1, MAX_PART_NUMBER)
    upload_id = _upload_for_key(call)
    data = await call.body()
    check_md5(call.request, data)
    part = call.state.store.upload_part(call.bucket.name, upload_id, number, data, call.now)
    return web.Response(headers={"ETag": part.etag, "Content-MD5": b64md5(data)})


async def complete_upload(call: OssCall) -> web.StreamResponse:
    call.authorize("oss:PutObject", call.key)
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
    call.authorize("oss:AbortMultipartUpload", call.key)
    call.state.store.abort(call.bucket.name, _upload_for_key(call))
    return web.Response(status=204)


async def list_parts(call: OssCall) -> web.StreamResponse:
    call.authorize("oss:ListParts", call.key)
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
    call.authorize("oss:ListMultipartUploads", None)
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
