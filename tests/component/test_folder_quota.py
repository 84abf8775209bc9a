"""Folder quotas end to end: Satchel measures the folder on the emulator with ListObjectsV2;
players upload with plain HTTP; the quota holds under 50 concurrent presigns."""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.request
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
import pytest_asyncio
from component.emulator_fixtures import emulator
from google.rpc import error_details_pb2, status_pb2
from support.stack import Stack, running_stack
from yarl import URL

from satchel.v1 import token_service_pb2 as pb
from satchel_server.config import MetricsSettings
from satchel_server.emulator.accounts import DEV_BUCKET
from satchel_server.emulator.faults import FaultPlan
from satchel_server.emulator.runner import Emulator
from satchel_server.wiring import dev_settings

__all__ = ["emulator"]
pytestmark = pytest.mark.asyncio
QUOTA = 1000
PREFIX = "players/p1/"


@pytest_asyncio.fixture
async def stack(emulator: Emulator) -> AsyncIterator[Stack]:
    settings = dev_settings("127.0.0.1:0", emulator)
    scope = dataclasses.replace(
        settings.scopes["dev"], folder_quota_bytes=QUOTA, default_permissions=("read", "list")
    )
    settings = dataclasses.replace(
        settings, scopes={"dev": scope}, metrics=MetricsSettings(listen="127.0.0.1:0")
    )
    async with running_stack(emulator, settings) as running:
        yield running


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def presign_put(stack: Stack, key: str, size: int) -> pb.PresignObjectResponse:
    request = pb.PresignObjectRequest(
        player_id="p1", key=key, method=pb.HTTP_METHOD_PUT, content_length=size
    )
    return await stack.stub.PresignObject(request, timeout=10)


async def put(http: aiohttp.ClientSession, presigned: pb.PresignObjectResponse, body: bytes) -> int:
    headers = {k: v for k, v in presigned.headers.items() if k != "Content-Length"}
    async with http.put(URL(presigned.url, encoded=True), data=body, headers=headers) as answer:
        await answer.read()
        return answer.status


def folder_total(emu: Emulator) -> int:
    listed = emu.state.store.list_objects(
        DEV_BUCKET, prefix=PREFIX, delimiter="", start_after="", max_keys=1000
    )
    return sum(meta.size for meta in listed.objects)


def metric(port: int, sample: str) -> float:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_the_upload_that_would_pass_the_quota_is_refused(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    first = await presign_put(stack, "a.dat", 600)
    assert await put(http, first, b"a" * 600) == 200
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await presign_put(stack, "b.dat", 401)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "is at its quota" in (refused.value.details() or "")
    assert "1000 bytes" in (refused.value.details() or "")
    second = await presign_put(stack, "b.dat", 400)  # exactly to the quota
    assert await put(http, second, b"b" * 400) == 200
    assert folder_total(stack.emulator) == QUOTA
    port = stack.server.metrics_port
    assert metric(port, 'satchel_quota_refusals_total{scope="dev"}') == 1
    assert metric(port, 'satchel_folder_lookups_total{outcome="ok",scope="dev"}') >= 1


async def test_post_forms_count_their_cap(stack: Stack) -> None:
    form = pb.PresignObjectRequest(
        player_id="p1", key="f.dat", method=pb.HTTP_METHOD_POST, max_size=900
    )
    await stack.stub.PresignObject(form, timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await presign_put(stack, "g.dat", 101)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_fifty_concurrent_presigns_keep_the_folder_within_its_quota(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    seed = await presign_put(stack, "seed.dat", 250)
    assert await put(http, seed, b"s" * 250) == 200
    port = stack.server.metrics_port
    lookups_before = metric(port, 'satchel_folder_lookups_total{outcome="ok",scope="dev"}')
    outcomes = await asyncio.gather(
        *(presign_put(stack, f"k{i}.dat", 100) for i in range(50)), return_exceptions=True
    )
    allowed = [o for o in outcomes if isinstance(o, pb.PresignObjectResponse)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(allowed) + len(refused) == 50
    assert {e.code() for e in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert len(allowed) == 7  # 250 + 7 x 100 fits 1000; an eighth would not
    # Every player uses every URL it got, and tries a bigger body first: refused by OSS.
    assert {await put(http, p, b"x" * 101) for p in allowed} == {403}
    assert {await put(http, p, b"x" * 100) for p in allowed} == {200}
    assert folder_total(stack.emulator) == 950 <= QUOTA
    lookups = metric(port, 'satchel_folder_lookups_total{outcome="ok",scope="dev"}')
    assert lookups - lookups_before <= 1  # the burst shared one lookup (or the cached one)


async def test_a_failed_lookup_refuses_the_upload_with_a_retry_hint(stack: Stack) -> None:
    stack.emulator.faults.set("oss", FaultPlan(status=503, count=1))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await presign_put(stack, "a.dat", 1)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "HTTP 503" in (refused.value.details() or "")
    details = dict(refused.value.trailing_metadata() or ())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(details)
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details)
    assert retry.retry_delay.seconds >= 1
    await presign_put(stack, "a.dat", 1)  # the next lookup works: nothing was remembered
    port = stack.server.metrics_port
    assert metric(port, 'satchel_folder_lookups_total{outcome="failed",scope="dev"}') == 1


async def test_issue_token_refuses_write_in_a_quota_scope(stack: Stack) -> None:
    ask = pb.IssueTokenRequest(
        player_id="p1", permissions=[pb.PERMISSION_READ, pb.PERMISSION_WRITE]
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.stub.IssueToken(ask, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "PresignObject" in (refused.value.details() or "")
    reader = await stack.stub.IssueToken(pb.IssueTokenRequest(player_id="p1"), timeout=10)
    assert sorted(reader.permissions) == [pb.PERMISSION_READ, pb.PERMISSION_LIST]


async def test_a_folder_lookup_is_held_to_the_servers_deadline_cap(emulator: Emulator) -> None:
    settings = dev_settings("127.0.0.1:0", emulator)
    scope = dataclasses.replace(settings.scopes["dev"], folder_quota_bytes=QUOTA)
    server = dataclasses.replace(settings.server, max_deadline_seconds=0.5)
    settings = dataclasses.replace(settings, scopes={"dev": scope}, server=server)
    async with running_stack(emulator, settings) as stack:
        # OSS answers the listing long after the cap (and well inside the client's 10 s).
        stack.emulator.faults.set("oss", FaultPlan(latency_s=3.0, count=1))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await presign_put(stack, "a.dat", 1)
        assert refused.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "listing the folder" in (refused.value.details() or "")
