"""The client against the real Satchel (wired as `satchel dev`) and its emulator, in-process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import oss2
import pytest
import pytest_asyncio
from component.emulator_fixtures import emulator
from support.stack import Stack, running_stack

import satchel
from satchel import Method, Permission
from satchel_server.cli import main
from satchel_server.emulator.faults import FaultPlan
from satchel_server.emulator.runner import Emulator

__all__ = ["emulator"]


@pytest_asyncio.fixture
async def stack(emulator: Emulator) -> AsyncIterator[Stack]:
    async with running_stack(emulator) as running:
        yield running


@pytest_asyncio.fixture
async def client(stack: Stack) -> AsyncIterator[satchel.Client]:
    async with satchel.Client(stack.server.address, timeout=10) as connected:
        yield connected


@pytest.mark.asyncio
async def test_issue_token_returns_a_typed_token_the_sdk_accepts(
    stack: Stack, client: satchel.Client
) -> None:
    token = await client.issue_token("p1", [Permission.WRITE, "read"], ttl=timedelta(minutes=30))
    assert token.permissions == (Permission.READ, Permission.WRITE)
    assert token.location.endpoint == stack.emulator.oss_url
    left = token.expiration - datetime.now(UTC)
    assert timedelta(minutes=25) < left <= timedelta(minutes=30)

    mobile = json.loads(token.to_sts_server_json())
    auth = oss2.StsAuth(mobile["AccessKeyId"], mobile["AccessKeySecret"], mobile["SecurityToken"])
    bucket = oss2.Bucket(auth, mobile["Endpoint"], mobile["Bucket"])
    key = f"{mobile['Prefix']}save.dat"
    await asyncio.to_thread(bucket.put_object, key, b"slot")
    assert await asyncio.to_thread(lambda: bucket.get_object(key).read()) == b"slot"


@pytest.mark.asyncio
async def test_presign_returns_a_typed_url(client: satchel.Client) -> None:
    presigned = await client.presign(
        "p1",
        "saves/a.dat",
        Method.PUT,
        content_type="text/plain",
        forbid_overwrite=True,
        content_length=12,
    )
    assert presigned.method is Method.PUT
    assert presigned.key == "players/p1/saves/a.dat"
    assert presigned.headers == {
        "Content-Type": "text/plain",
        "Content-Length": "12",
        "x-oss-forbid-overwrite": "true",
    }
    assert presigned.expiration > datetime.now(UTC)
    form = await client.presign("p1", "saves/b.dat", "post", max_size=1024)
    assert form.form_fields["key"] == "players/p1/saves/b.dat"


@pytest.mark.asyncio
async def test_presign_many_answers_each_item_in_order(
    stack: Stack, client: satchel.Client
) -> None:
    items = [
        satchel.PresignItem(
            "gallery/1.png", Method.PUT, content_type="image/png", content_length=4
        ),
        satchel.PresignItem("../x", Method.GET),
        satchel.PresignItem("gallery/1.png"),
    ]
    put, refused, get = await client.presign_many("p1", items)
    assert isinstance(put, satchel.Presigned)
    assert (put.method, put.key) == (Method.PUT, "players/p1/gallery/1.png")
    assert put.headers["Content-Length"] == "4"
    assert isinstance(refused, satchel.InvalidArgumentError)
    assert [v.field for v in refused.field_violations] == ["items[1].key"]
    assert isinstance(get, satchel.Presigned)
    assert get.method is Method.GET
    with pytest.raises(satchel.InvalidArgumentError) as caught:
        await client.presign_many("p1*", items)
    assert [v.field for v in caught.value.field_violations] == ["player_id"]

    def blocking() -> list[satchel.Presigned | satchel.SatchelError]:
        with satchel.SyncClient(stack.server.address, timeout=10) as sync:
            return sync.presign_many("p1", items[1:], scope="dev")

    outcomes = await asyncio.to_thread(blocking)
    assert [type(outcome) for outcome in outcomes] == [
        satchel.InvalidArgumentError,
        satchel.Presigned,
    ]


@pytest.mark.asyncio
async def test_bad_requests_raise_invalid_argument_naming_the_field(client: satchel.Client) -> None:
    with pytest.raises(satchel.InvalidArgumentError) as caught:
        await client.issue_token("p1*")
    assert [v.field for v in caught.value.field_violations] == ["player_id"]
    with pytest.raises(satchel.InvalidArgumentError) as caught:
        await client.presign("p1", "../x", Method.GET)
    assert [v.field for v in caught.value.field_violations] == ["key"]


@pytest.mark.asyncio
async def test_throttled_sts_surfaces_as_unavailable_with_the_retry_delay(stack: Stack) -> None:
    stack.emulator.faults.set("sts", FaultPlan(throttle=True))
    async with satchel.Client(stack.server.address, retry=satchel.NO_RETRIES) as client:
        with pytest.raises(satchel.UnavailableError) as caught:
            await client.issue_token("p9")
    assert caught.value.retry_delay is not None
    assert caught.value.retry_delay >= timedelta(seconds=1)


@pytest.mark.asyncio
async def test_sync_client(stack: Stack) -> None:
    def calls() -> tuple[satchel.Token, satchel.Presigned]:
        with satchel.SyncClient(stack.server.address) as client:
            return client.issue_token("p2"), client.presign("p2", "x.dat", "GET")

    token, presigned = await asyncio.to_thread(calls)
    assert token.location.prefix == "players/p2/"
    assert presigned.key == "players/p2/x.dat"


@pytest.mark.asyncio
async def test_cli_issue_and_presign_print_json(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ["--target", stack.server.address]
    argv = ["issue", "--player", "p1", "--permissions", "read,write", "--ttl", "20m", *target]
    assert await asyncio.to_thread(main, argv) == 0
    issued = json.loads(capsys.readouterr().out)
    assert issued["permissions"] == ["read", "write"]
    assert issued["prefix"] == "players/p1/"
    assert issued["access_key_id"].startswith("STS.")
    assert issued["expiration"].endswith("Z")

    assert await asyncio.to_thread(main, ["issue", "--player", "p1", "--mobile", *target]) == 0
    assert json.loads(capsys.readouterr().out)["StatusCode"] == "200"

    argv = ["presign", "--player", "p1", "--key", "save.dat", "--method", "PUT", *target]
    argv += ["--content-type", "application/octet-stream", "--expires", "10m"]
    assert await asyncio.to_thread(main, [*argv, "--content-length", "1024"]) == 0
    presigned = json.loads(capsys.readouterr().out)
    assert presigned["method"] == "PUT"
    assert presigned["key"] == "players/p1/save.dat"
    assert presigned["headers"] == {
        "Content-Type": "application/octet-stream",
        "Content-Length": "1024",
    }
    assert await asyncio.to_thread(main, argv) == 1  # a PUT without its size
    refused = json.loads(capsys.readouterr().err)["error"]
    assert refused["code"] == "INVALID_ARGUMENT", refused
    assert refused["field_violations"][0]["field"] == "content_length"


@pytest.mark.asyncio
async def test_cli_presigns_several_keys_in_one_call(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["presign", "--player", "p1", "--key", "a.png", "--key", "b.png"]
    argv += ["--expires", "5m", "--target", stack.server.address]
    assert await asyncio.to_thread(main, argv) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(item["method"], item["key"]) for item in listed] == [
        ("GET", "players/p1/a.png"),
        ("GET", "players/p1/b.png"),
    ]
    argv = ["presign", "--player", "p1", "--key", "a.png", "--key", "../b.png"]
    assert await asyncio.to_thread(main, [*argv, "--target", stack.server.address]) == 1
    good, refused = json.loads(capsys.readouterr().out)
    assert good["key"] == "players/p1/a.png"
    assert refused["error"]["code"] == "INVALID_ARGUMENT"
    assert refused["error"]["field_violations"][0]["field"] == "items[1].key"


@pytest.mark.asyncio
async def test_cli_errors_are_json_on_stderr_with_exit_1(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["issue", "--player", "p*", "--target", stack.server.address]
    assert await asyncio.to_thread(main, argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    error = json.loads(captured.err)["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert error["field_violations"][0]["field"] == "player_id"
