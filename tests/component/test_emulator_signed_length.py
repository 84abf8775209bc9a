"""The emulator holds a presigned PUT to the Content-Length it signed, as OSS does.

Sent with curl (which sets the length from the file) and with urllib and aiohttp (which
set it from the body): the signed size lands, any other size is SignatureDoesNotMatch,
and a body with no Content-Length (chunked) is InvalidArgument.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from component.emulator_fixtures import emulator

from satchel_server.emulator import accounts as acc
from satchel_server.emulator.runner import Emulator
from satchel_server.signing import (
    OssEndpoint,
    OssRequest,
    SigningCredentials,
    presign_v4,
)

__all__ = ["emulator"]
pytestmark = pytest.mark.asyncio

KEY = "players/p1/save.dat"
OWNER = SigningCredentials(acc.DEV_ACCESS_KEY_ID, acc.DEV_ACCESS_KEY_SECRET)
CONTENT_TYPE = "application/octet-stream"


def presigned_put(emu: Emulator, size: int) -> str:
    request = OssRequest(
        method="PUT",
        bucket=acc.DEV_BUCKET,
        key=KEY,
        credentials=OWNER,
        now=datetime.now(UTC),
        region=acc.DEV_REGION,
        expires=300,
        headers={"Content-Type": CONTENT_TYPE, "Content-Length": str(size)},
        additional_headers=("content-length",),
        endpoint=OssEndpoint(emu.oss_url.removeprefix("http://"), scheme="http", path_style=True),
    )
    return presign_v4(request).url


def urllib_put(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, method="PUT", headers={"Content-Type": CONTENT_TYPE}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def curl_put(url: str, path: Path) -> tuple[int, str]:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    done = subprocess.run(
        [
            curl,
            "-sS",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            "PUT",
            "-T",
            str(path),
            "-H",
            f"Content-Type: {CONTENT_TYPE}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, code = done.stdout.rpartition("\n")
    return int(code), body


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_urllib_sends_the_signed_size_only(emulator: Emulator) -> None:
    url = presigned_put(emulator, 5)
    status, body = await asyncio.to_thread(urllib_put, url, b"12345x")
    assert status == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in body
    status, body = await asyncio.to_thread(urllib_put, url, b"1234")
    assert status == 403
    status, _ = await asyncio.to_thread(urllib_put, url, b"12345")
    assert status == 200
    assert emulator.state.store.get(acc.DEV_BUCKET, KEY)[1] == b"12345"


async def test_curl_sends_the_signed_size_only(emulator: Emulator, tmp_path: Path) -> None:
    url = presigned_put(emulator, 3)
    bigger = tmp_path / "bigger.dat"
    bigger.write_bytes(b"four")
    status, body = await asyncio.to_thread(curl_put, url, bigger)
    assert (status, "<Code>SignatureDoesNotMatch</Code>" in body) == (403, True)
    right = tmp_path / "right.dat"
    right.write_bytes(b"abc")
    status, _ = await asyncio.to_thread(curl_put, url, right)
    assert status == 200


async def test_aiohttp_sends_the_signed_size_only(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    url = presigned_put(emulator, 2)
    headers = {"Content-Type": CONTENT_TYPE}
    async with session.put(url, data=b"too long", headers=headers) as answer:
        assert answer.status == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in await answer.text()
    async with session.put(url, data=b"ok", headers=headers) as answer:
        assert answer.status == 200


async def test_a_body_without_content_length_is_refused(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"ok"

    url = presigned_put(emulator, 2)
    async with session.put(url, data=chunks(), headers={"Content-Type": CONTENT_TYPE}) as answer:
        assert answer.status == 400
        text = await answer.text()
    assert "<Code>InvalidArgument</Code>" in text
