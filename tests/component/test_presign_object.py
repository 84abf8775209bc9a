"""PresignObject end to end: Satchel + emulator, used with plain HTTP only (no SDK)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import grpc
import pytest
import pytest_asyncio
from component.emulator_fixtures import emulator
from google.protobuf.duration_pb2 import Duration
from support.stack import Stack, running_stack
from yarl import URL

from satchel.v1 import token_service_pb2 as pb
from satchel_server.emulator.accounts import DEV_BUCKET, DEV_REGION
from satchel_server.emulator.faults import FaultPlan
from satchel_server.emulator.runner import Emulator

__all__ = ["emulator"]


@pytest_asyncio.fixture
async def stack(emulator: Emulator) -> AsyncIterator[Stack]:
    async with running_stack(emulator) as running:
        yield running


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def presign(stack: Stack, key: str, method: int, **fields: Any) -> pb.PresignObjectResponse:
    request = pb.PresignObjectRequest(player_id="p1", key=key, method=method, **fields)
    return await stack.stub.PresignObject(request, timeout=10)


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    data: bytes | aiohttp.FormData | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    # encoded=True: the URL goes out byte for byte as signed, never re-encoded.
    async with http.request(method, URL(url, encoded=True), data=data, headers=headers) as r:
        return r.status, await r.read()


def error_code(body: bytes) -> str:
    text = body.decode()
    return text.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in text else ""


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "key", ["save.dat", "slot 1+2=3&x.sav", "100%/#hash?query", "存档/第一关 ☃.dat", "a~b*c"]
)
async def test_put_get_head_delete_roundtrip(
    stack: Stack, http: aiohttp.ClientSession, key: str
) -> None:
    put = await presign(stack, key, pb.HTTP_METHOD_PUT, content_length=len(b"save-bytes"))
    assert (put.method, put.key) == (pb.HTTP_METHOD_PUT, f"players/p1/{key}")
    assert put.location.prefix == "players/p1/"
    assert (put.location.bucket, put.location.region) == (DEV_BUCKET, DEV_REGION)
    assert (await call(http, "PUT", put.url, b"save-bytes", dict(put.headers)))[0] == 200
    get = await presign(stack, key, pb.HTTP_METHOD_GET)
    assert (get.method, get.key, get.location) == (pb.HTTP_METHOD_GET, put.key, put.location)
    assert await call(http, "GET", get.url) == (200, b"save-bytes")
    head = await presign(stack, key, pb.HTTP_METHOD_HEAD)
    assert (await call(http, "HEAD", head.url))[0] == 200
    delete = await presign(stack, key, pb.HTTP_METHOD_DELETE)
    assert (await call(http, "DELETE", delete.url))[0] == 204
    assert (await call(http, "GET", get.url))[0] == 404


@pytest.mark.asyncio
async def test_a_get_url_cannot_be_used_to_put(stack: Stack, http: aiohttp.ClientSession) -> None:
    get = await presign(stack, "save.dat", pb.HTTP_METHOD_GET)
    status, body = await call(http, "PUT", get.url, b"overwrite")
    assert (status, error_code(body)) == (403, "SignatureDoesNotMatch")


def tampered(url: str, name: str) -> str:
    parts = urlsplit(url)
    query = [
        (k, v[:-2] + ("AA" if v[-2:] != "AA" else "BB") if k == name else v)
        for k, v in parse_qsl(parts.query)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="/")))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "name",
    ["x-oss-date", "x-oss-expires", "x-oss-credential", "x-oss-security-token", "x-oss-signature"],
)
async def test_any_tampered_query_parameter_is_refused(
    stack: Stack, http: aiohttp.ClientSession, name: str
) -> None:
    put = await presign(stack, "save.dat", pb.HTTP_METHOD_PUT, content_length=2)
    assert (await call(http, "PUT", put.url, b"v1"))[0] == 200
    get = await presign(stack, "save.dat", pb.HTTP_METHOD_GET)
    status, _ = await call(http, "GET", tampered(get.url, name))
    assert status in (400, 403)


@pytest.mark.asyncio
async def test_a_tampered_key_is_refused(stack: Stack, http: aiohttp.ClientSession) -> None:
    get = await presign(stack, "save.dat", pb.HTTP_METHOD_GET)
    other = get.url.replace("/players/p1/save.dat", "/players/p2/save.dat")
    assert (await call(http, "GET", other))[0] == 403


@pytest.mark.asyncio
async def test_url_is_refused_after_its_expiration(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    put = await presign(
        stack, "save.dat", pb.HTTP_METHOD_PUT, expires_in=Duration(seconds=60), content_length=4
    )
    lifetime = put.expiration.ToDatetime(UTC) - datetime.now(UTC)
    assert 50 < lifetime.total_seconds() <= 60
    stack.emulator.faults.set("oss", FaultPlan(clock_offset_s=61))
    status, body = await call(http, "PUT", put.url, b"late")
    assert (status, error_code(body)) == (403, "AccessDenied")


@pytest.mark.asyncio
async def test_put_with_another_content_type_is_refused(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    put = await presign(
        stack, "pic.png", pb.HTTP_METHOD_PUT, content_type="image/png", content_length=4
    )
    assert dict(put.headers) == {"Content-Type": "image/png", "Content-Length": "4"}
    wrong = {"Content-Type": "text/html"}
    assert (await call(http, "PUT", put.url, b"<sc>", wrong))[0] == 403
    assert (await call(http, "PUT", put.url, b"\x89PNG", dict(put.headers)))[0] == 200


@pytest.mark.asyncio
async def test_forbid_overwrite_makes_the_second_put_fail(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    put = await presign(
        stack, "once.dat", pb.HTTP_METHOD_PUT, forbid_overwrite=True, content_length=5
    )
    assert (await call(http, "PUT", put.url, b"first", dict(put.headers)))[0] == 200
    status, body = await call(http, "PUT", put.url, b"again", dict(put.headers))
    assert (status, error_code(body)) == (409, "FileAlreadyExists")


def form(fields: dict[str, str], content: bytes, **overrides: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, value in {**fields, **overrides}.items():
        data.add_field(name, value)
    data.add_field("file", content, filename="upload.bin")  # the file field goes last
    return data


@pytest.mark.asyncio
async def test_post_form_enforces_size_and_key(stack: Stack, http: aiohttp.ClientSession) -> None:
    post = await presign(stack, "shot.png", pb.HTTP_METHOD_POST, max_size=16)
    fields = dict(post.form_fields)
    assert (await call(http, "POST", post.url, form(fields, b"x" * 16)))[0] == 204
    get = await presign(stack, "shot.png", pb.HTTP_METHOD_GET)
    assert await call(http, "GET", get.url) == (200, b"x" * 16)
    status, body = await call(http, "POST", post.url, form(fields, b"x" * 17))
    assert (status, error_code(body)) == (400, "EntityTooLarge")
    status, _ = await call(http, "POST", post.url, form(fields, b"x", key="players/p2/shot.png"))
    assert status == 403


@pytest.mark.asyncio
async def test_steady_state_presigning_makes_no_sts_calls(stack: Stack) -> None:
    await presign(stack, "warm.dat", pb.HTTP_METHOD_GET)
    before = stack.emulator.counters.assume_role_calls
    await asyncio.gather(*(presign(stack, f"k{i}.dat", pb.HTTP_METHOD_GET) for i in range(200)))
    assert stack.emulator.counters.assume_role_calls == before


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"key": "../p2/save.dat", "method": pb.HTTP_METHOD_GET}, "key"),
        ({"key": "a//b", "method": pb.HTTP_METHOD_GET}, "key"),
        ({"key": "x" * 1013, "method": pb.HTTP_METHOD_GET}, "key"),
        ({"key": "save.dat"}, "method"),
        ({"key": "save.dat", "method": 9}, "method"),
        (
            {"key": "k", "method": pb.HTTP_METHOD_GET, "expires_in": Duration(seconds=0)},
            "expires_in",
        ),
        (
            {"key": "k", "method": pb.HTTP_METHOD_GET, "expires_in": Duration(seconds=-1)},
            "expires_in",
        ),
        (
            {"key": "k", "method": pb.HTTP_METHOD_GET, "expires_in": Duration(seconds=604801)},
            "expires_in",
        ),
    ],
)
async def test_bad_requests_are_invalid_argument(
    stack: Stack, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.stub.PresignObject(pb.PresignObjectRequest(player_id="p1", **fields), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"{field}: ")


@pytest.mark.asyncio
async def test_a_key_of_exactly_1023_bytes_works(stack: Stack, http: aiohttp.ClientSession) -> None:
    key = "x" * (1023 - len("players/p1/"))
    put = await presign(stack, key, pb.HTTP_METHOD_PUT, content_length=4)
    assert (await call(http, "PUT", put.url, b"edge"))[0] == 200
