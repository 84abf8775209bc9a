"""PresignObjects end to end: many objects in one call, each answered or refused on its own.

Satchel + emulator in-process; the URLs are used with plain HTTP (aiohttp and urllib).
"""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import pytest_asyncio
from component.auth_fixtures import (
    EU_KEY,
    audit_lines,
    auth_settings,
    bearer,
    metadata_value,
)
from component.emulator_fixtures import emulator
from component.test_issue_token import bad_request_of, retry_delay_of
from component.test_presign_object import call
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2
from support.stack import Stack, running_stack

from satchel.v1 import token_service_pb2 as pb
from satchel_server.config import LimitSettings
from satchel_server.emulator.runner import Emulator
from satchel_server.rules.scopes import MAX_PRESIGN_ITEMS
from satchel_server.wiring import dev_settings

__all__ = ["emulator"]

SLOW = 0.001  # tokens per second: none comes back during a test


@pytest_asyncio.fixture
async def stack(emulator: Emulator) -> AsyncIterator[Stack]:
    async with running_stack(emulator) as running:
        yield running


def item(key: str, method: int, **fields: Any) -> pb.PresignItem:
    return pb.PresignItem(key=key, method=method, **fields)


async def presign_many(
    stack: Stack, *items: pb.PresignItem, player_id: str = "p1", **call_options: Any
) -> pb.PresignObjectsResponse:
    request = pb.PresignObjectsRequest(player_id=player_id, items=items)
    return await stack.stub.PresignObjects(request, timeout=10, **call_options)


def violations(status: Any) -> list[tuple[str, str]]:
    found = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found


def urllib_call(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> bytes:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        data: bytes = response.read()
        return data


@pytest.mark.asyncio
async def test_several_puts_then_gets_work_with_plain_http(stack: Stack) -> None:
    keys = [f"gallery/shot-{index}.png" for index in range(5)] + ["存档 1+1.sav"]
    bodies = [f"body {index}".encode() for index in range(len(keys))]
    puts = await presign_many(
        stack,
        *(
            item(key, pb.HTTP_METHOD_PUT, content_type="image/png", content_length=len(body))
            for key, body in zip(keys, bodies, strict=True)
        ),
    )
    assert [r.WhichOneof("outcome") for r in puts.results] == ["presigned"] * len(keys)
    async with aiohttp.ClientSession() as http:
        for index, result in enumerate(puts.results):
            put = result.presigned
            assert put.key == f"players/p1/{keys[index]}"
            assert put.location.prefix == "players/p1/"
            status, _ = await call(http, "PUT", put.url, bodies[index], dict(put.headers))
            assert status == 200
        gets = await presign_many(stack, *(item(key, pb.HTTP_METHOD_GET) for key in keys))
        for index, result in enumerate(gets.results):
            assert result.presigned.method == pb.HTTP_METHOD_GET
            assert await call(http, "GET", result.presigned.url) == (200, bodies[index])
    # urllib too: the URLs are plain HTTP, for any client.
    last = puts.results[0].presigned
    again = b"body 9"  # the size the URL signed, other bytes
    await asyncio.to_thread(urllib_call, "PUT", last.url, again, dict(last.headers))
    body = await asyncio.to_thread(urllib_call, "GET", gets.results[0].presigned.url, None, {})
    assert body == again


@pytest.mark.asyncio
async def test_a_bad_item_is_refused_alone_with_its_status_and_field(stack: Stack) -> None:
    answer = await presign_many(
        stack,
        item("good-1.dat", pb.HTTP_METHOD_GET),
        item("../p2/save.dat", pb.HTTP_METHOD_GET),
        item("good-2.dat", pb.HTTP_METHOD_PUT, content_length=10),
        item("no-method.dat", pb.HTTP_METHOD_UNSPECIFIED),
        item("x.dat", pb.HTTP_METHOD_GET, forbid_overwrite=True),
        item("late.dat", pb.HTTP_METHOD_GET, expires_in=Duration(seconds=0)),
        item("unsized.dat", pb.HTTP_METHOD_PUT),  # a PUT must give its size
    )
    outcomes = [result.WhichOneof("outcome") for result in answer.results]
    assert outcomes == ["presigned", "error", "presigned", "error", "error", "error", "error"]
    assert answer.results[0].presigned.key == "players/p1/good-1.dat"
    assert answer.results[2].presigned.key == "players/p1/good-2.dat"
    assert answer.results[2].presigned.headers["Content-Length"] == "10"  # signed
    refused = {index: answer.results[index].error for index in (1, 3, 4, 5, 6)}
    assert {i: e.code for i, e in refused.items()} == dict.fromkeys(
        refused, code_pb2.INVALID_ARGUMENT
    )
    fields = {index: [field for field, _ in violations(e)] for index, e in refused.items()}
    assert fields == {
        1: ["items[1].key"],
        3: ["items[3].method"],
        4: ["items[4].forbid_overwrite"],
        5: ["items[5].expires_in"],
        6: ["items[6].content_length"],
    }
    assert refused[1].message == "items[1].key: must not contain '.' or '..' segments"


@pytest.mark.asyncio
@pytest.mark.parametrize("count", [0, MAX_PRESIGN_ITEMS + 1])
async def test_no_items_or_more_than_100_fail_the_call_naming_items(
    stack: Stack, count: int
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await presign_many(stack, *(item(f"k{i}", pb.HTTP_METHOD_GET) for i in range(count)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [violation] = bad_request_of(caught.value).field_violations
    assert violation.field == "items"
    assert "1 to 100" in violation.description


@pytest.mark.asyncio
async def test_exactly_100_items_are_answered_in_order(stack: Stack) -> None:
    keys = [f"k{i:03d}" for i in range(MAX_PRESIGN_ITEMS)]
    answer = await presign_many(stack, *(item(key, pb.HTTP_METHOD_HEAD) for key in keys))
    assert [r.presigned.key for r in answer.results] == [f"players/p1/{k}" for k in keys]


@pytest.mark.asyncio
@pytest.mark.parametrize(("player_id", "scope"), [("../p2", ""), ("p1", "nope")])
async def test_a_bad_player_or_scope_fails_the_whole_call(
    stack: Stack, player_id: str, scope: str
) -> None:
    request = pb.PresignObjectsRequest(
        player_id=player_id, scope=scope, items=[item("a", pb.HTTP_METHOD_GET)]
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.stub.PresignObjects(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    field = "player_id" if scope == "" else "scope"
    assert [v.field for v in bad_request_of(caught.value).field_violations] == [field]


@pytest.mark.asyncio
async def test_presigning_many_makes_no_sts_calls(stack: Stack) -> None:
    await presign_many(stack, item("warm", pb.HTTP_METHOD_GET))
    before = stack.emulator.counters.assume_role_calls
    await presign_many(stack, *(item(f"k{i}", pb.HTTP_METHOD_GET) for i in range(100)))
    assert stack.emulator.counters.assume_role_calls == before


@pytest.mark.asyncio
async def test_grants_are_checked_per_item_and_each_item_audited(
    emulator: Emulator, tmp_path: Path
) -> None:
    # game-eu may GET, PUT, HEAD and POST in "dev" for players eu-N; never DELETE.
    audit = tmp_path / "audit.jsonl"
    async with running_stack(emulator, auth_settings(emulator, audit)) as stack:
        answer = await presign_many(
            stack,
            item("a.dat", pb.HTTP_METHOD_GET),
            item("a.dat", pb.HTTP_METHOD_DELETE),
            item("a//b", pb.HTTP_METHOD_GET),
            item("b.dat", pb.HTTP_METHOD_PUT, content_length=3),
            player_id="eu-1",
            metadata=bearer(EU_KEY),
        )
        call_ = stack.stub.PresignObjects(
            pb.PresignObjectsRequest(player_id="eu-1", items=[item("c", pb.HTTP_METHOD_GET)]),
            metadata=bearer(EU_KEY),
            timeout=10,
        )
        await call_
        request_id = metadata_value(await call_.trailing_metadata(), "x-request-id")
    results = answer.results
    assert [r.WhichOneof("outcome") for r in results] == [
        "presigned",
        "error",
        "error",
        "presigned",
    ]
    assert results[1].error.code == code_pb2.PERMISSION_DENIED
    assert "may not presign DELETE" in results[1].error.message
    assert violations(results[2].error)[0][0] == "items[2].key"
    lines = audit_lines(audit)
    first, second = lines[:4], lines[4:]
    assert [(line["item"], line["status"], line["outcome"]) for line in first] == [
        (0, "OK", "allowed"),
        (1, "PERMISSION_DENIED", "denied"),
        (2, "INVALID_ARGUMENT", "denied"),
        (3, "OK", "allowed"),
    ]
    assert {line["request_id"] for line in first} != {request_id}
    assert len({line["request_id"] for line in first}) == 1
    for line in first:
        assert (line["rpc"], line["caller"], line["scope"], line["player"]) == (
            "PresignObjects",
            "game-eu",
            "dev",
            "eu-1",
        )
    assert [(line["method"], line["key"]) for line in first] == [
        ("GET", "players/eu-1/a.dat"),
        ("DELETE", "players/eu-1/a.dat"),
        (None, None),  # never validated: the raw key is not put on record
        ("PUT", "players/eu-1/b.dat"),
    ]
    assert first[0]["expiration"] is not None
    assert first[1]["expiration"] is None
    assert "may not presign DELETE" in first[1]["reason"]
    assert [(line["item"], line["request_id"]) for line in second] == [(0, request_id)]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("player_id", "scope"), [("us-1", "dev"), ("eu-1", "other")], ids=["player", "scope"]
)
async def test_a_caller_not_granted_the_player_or_scope_is_refused_the_whole_call(
    emulator: Emulator, tmp_path: Path, player_id: str, scope: str
) -> None:
    audit = tmp_path / "audit.jsonl"
    async with running_stack(emulator, auth_settings(emulator, audit)) as stack:
        request = pb.PresignObjectsRequest(
            player_id=player_id, scope=scope, items=[item("a", pb.HTTP_METHOD_GET)] * 3
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stack.stub.PresignObjects(request, metadata=bearer(EU_KEY), timeout=10)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    [line] = audit_lines(audit)
    assert (line["status"], line["item"], line["player"]) == ("PERMISSION_DENIED", None, player_id)


@pytest.mark.asyncio
async def test_a_call_counts_once_against_the_player_rate_limit(
    emulator: Emulator, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    limits = LimitSettings(player_rate_per_second=SLOW, player_burst=2)
    settings = auth_settings(emulator, audit, limits=limits)
    many = [item(f"k{i}", pb.HTTP_METHOD_GET) for i in range(50)]
    async with running_stack(emulator, settings) as stack:
        # A call none of whose items may proceed spends nothing.
        refused = await presign_many(
            stack, item("a", pb.HTTP_METHOD_DELETE), player_id="eu-1", metadata=bearer(EU_KEY)
        )
        assert refused.results[0].error.code == code_pb2.PERMISSION_DENIED
        for _ in range(2):  # the burst: two calls of 50 URLs each
            answer = await presign_many(stack, *many, player_id="eu-1", metadata=bearer(EU_KEY))
            assert all(r.WhichOneof("outcome") == "presigned" for r in answer.results)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await presign_many(stack, *many[:3], player_id="eu-1", metadata=bearer(EU_KEY))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "this player" in caught.value.details()
    assert (retry_delay_of(caught.value) or 0) >= 900
    limited = audit_lines(audit)[-3:]
    assert [(line["item"], line["status"]) for line in limited] == [
        (0, "RESOURCE_EXHAUSTED"),
        (1, "RESOURCE_EXHAUSTED"),
        (2, "RESOURCE_EXHAUSTED"),
    ]
    assert all("rate limit" in line["reason"] for line in limited)
    assert len(audit_lines(audit)) == 1 + 50 + 50 + 3


@pytest.mark.asyncio
async def test_a_folder_quota_refuses_the_items_that_would_pass_it_alone(
    emulator: Emulator,
) -> None:
    settings = dev_settings("127.0.0.1:0", emulator)
    scope = dataclasses.replace(
        settings.scopes["dev"], folder_quota_bytes=1000, default_permissions=("read", "list")
    )
    async with running_stack(emulator, dataclasses.replace(settings, scopes={"dev": scope})) as s:
        answer = await presign_many(
            s,
            item("a.bin", pb.HTTP_METHOD_PUT, content_length=600),
            item("b.bin", pb.HTTP_METHOD_PUT, content_length=600),  # 1200 > 1000
            item("c.bin", pb.HTTP_METHOD_PUT, content_length=400),  # 1000: fits
            item("a.bin", pb.HTTP_METHOD_GET),
        )
    outcomes = [result.WhichOneof("outcome") for result in answer.results]
    assert outcomes == ["presigned", "error", "presigned", "presigned"]
    assert answer.results[1].error.code == code_pb2.RESOURCE_EXHAUSTED
    assert "quota" in answer.results[1].error.message
