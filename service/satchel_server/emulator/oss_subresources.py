"""Object sub-resources: ACL, tags, symlinks and restore, each under its own RAM action.

None of these touches an object's bytes: ACL and tags live in its metadata, a symlink is an
object of its own, and every object here is Standard, which OSS never restores.
The emulator stores ACLs and returns them, but grants nothing by them: anonymous requests
are refused whatever the ACL, as with OSS's Block Public Access on.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from aiohttp import web

from satchel_server.emulator import oss_xml
from satchel_server.emulator.errors import OssError
from satchel_server.emulator.oss_addressing import check_key
from satchel_server.emulator.oss_attributes import ACL_HEADER, check_acl, check_tags, upload_extras
from satchel_server.emulator.oss_call import (
    DEFAULT_CONTENT_TYPE,
    OssCall,
    forbids_overwrite,
    xml_response,
)

SYMLINK_TARGET_HEADER = "x-oss-symlink-target"


async def put_object_acl(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    acl = check_acl(call.request.headers.get(ACL_HEADER))
    call.state.store.set_attributes(call.bucket.name, call.key, acl=acl)
    return web.Response()


async def get_object_acl(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    meta = call.state.store.head(call.bucket.name, call.key)
    return xml_response(oss_xml.acl_result(meta.acl))


async def put_object_tagging(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    tags = check_tags(oss_xml.parse_tagging(await call.body()))
    call.state.store.set_attributes(call.bucket.name, call.key, tags=tags)
    return web.Response()


async def get_object_tagging(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    meta = call.state.store.head(call.bucket.name, call.key)
    return xml_response(oss_xml.tagging_result(meta.tags))


async def delete_object_tagging(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    call.state.store.set_attributes(call.bucket.name, call.key, tags={})
    return web.Response(status=204)


async def put_symlink(call: OssCall) -> web.StreamResponse:
    """A symlink object at the key, pointing at the (URL-encoded) target key."""
    call.authorize(call.action, call.key)
    headers = call.request.headers
    raw_target = headers.get(SYMLINK_TARGET_HEADER)
    if not raw_target:
        raise OssError("InvalidArgument", f"{SYMLINK_TARGET_HEADER} is required.")
    target = check_key(unquote(raw_target))
    extras = upload_extras(call, headers, key=call.key, content_type=DEFAULT_CONTENT_TYPE)
    meta = call.state.store.put(
        call.bucket.name,
        call.key,
        b"",
        extras=extras,
        now=call.now,
        forbid_overwrite=forbids_overwrite(headers),
        symlink_target=target,
    )
    return web.Response(headers={"ETag": meta.etag})


async def get_symlink(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    meta = call.state.store.head(call.bucket.name, call.key)
    if meta.symlink_target is None:
        raise OssError("NotSymlink")
    return web.Response(
        headers={
            SYMLINK_TARGET_HEADER: quote(meta.symlink_target, safe=""),
            "ETag": meta.etag,
            "Last-Modified": oss_xml.http_date(meta.last_modified),
        }
    )


async def restore_object(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, call.key)
    call.state.store.head(call.bucket.name, call.key)
    raise OssError("OperationNotSupported", "Only Archive and Cold Archive objects are restored.")
