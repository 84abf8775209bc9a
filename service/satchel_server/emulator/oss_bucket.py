"""Bucket configuration reads: GetBucketLocation and GetBucketCors, each under its RAM action."""

from __future__ import annotations

from aiohttp import web

from satchel_server.emulator import oss_xml
from satchel_server.emulator.errors import OssError
from satchel_server.emulator.oss_call import OssCall, xml_response


async def get_bucket_location(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, None)
    return xml_response(oss_xml.location_constraint(call.bucket.region))


async def get_bucket_cors(call: OssCall) -> web.StreamResponse:
    call.authorize(call.action, None)
    if not call.bucket.cors:
        raise OssError("NoSuchCORSConfiguration")
    return xml_response(oss_xml.cors_configuration(call.bucket.cors))
