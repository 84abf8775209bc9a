"""ListObjects (V1) and ListObjectsV2, with `oss:Prefix` / `oss:Delimiter` for RAM."""

from __future__ import annotations

from aiohttp import web

from satchel_server.emulator import oss_xml
from satchel_server.emulator.oss_call import OssCall, int_param, xml_response
from satchel_server.emulator.store import decode_token, encode_token


def _list_context(prefix: str | None, delimiter: str | None) -> dict[str, str]:
    extra = {}
    if prefix is not None:
        extra["oss:Prefix"] = prefix
    if delimiter is not None:
        extra["oss:Delimiter"] = delimiter
    return extra


async def list_objects(call: OssCall) -> web.StreamResponse:
    prefix, delimiter = call.target.param("prefix"), call.target.param("delimiter")
    call.authorize(call.action, None, _list_context(prefix, delimiter))
    max_keys = int_param(call, "max-keys", 100, 1, 1000)
    enc = call.enc()
    v2 = call.target.param("list-type") == "2"
    if v2:
        token = call.target.param("continuation-token") or ""
        start_after = call.target.param("start-after") or ""
        marker = decode_token(token) if token else start_after
    else:
        marker = call.target.param("marker") or ""
    result = call.state.store.list_objects(
        call.bucket.name,
        prefix=prefix or "",
        delimiter=delimiter or "",
        start_after=marker,
        max_keys=max_keys,
    )
    if v2:
        body = oss_xml.list_v2(
            call.bucket.name,
            result,
            prefix=prefix or "",
            start_after=start_after,
            token=token,
            next_token=encode_token(result.next_marker) if result.is_truncated else "",
            delimiter=delimiter or "",
            max_keys=max_keys,
            fetch_owner=call.target.param("fetch-owner") == "true",
            enc=enc,
        )
    else:
        body = oss_xml.list_v1(
            call.bucket.name,
            result,
            prefix=prefix or "",
            marker=marker,
            delimiter=delimiter or "",
            max_keys=max_keys,
            enc=enc,
        )
    return xml_response(body)
