"""A POST form writes exactly its key: whatever the uploaded file is called, or it is refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import grpc
import pytest
import pytest_asyncio
from component.emulator_fixtures import emulator
from hypothesis import given, settings
from hypothesis import strategies as st
from support.stack import Stack, running_stack
from yarl import URL

from satchel.v1 import token_service_pb2 as pb
from satchel_server.emulator.accounts import (
    DEV_ACCESS_KEY_ID,
    DEV_ACCESS_KEY_SECRET,
    DEV_BUCKET,
    DEV_REGION,
)
from satchel_server.emulator.runner import Emulator
from satchel_server.signing import SigningCredentials
from satchel_server.signing.post_policy import PostPolicyRequest, post_form_v4

__all__ = ["emulator"]


@pytest_asyncio.fixture
async def stack(emulator: Emulator) -> AsyncIterator[Stack]:
    async with running_stack(emulator) as running:
        yield running


def stored_keys(stack: Stack) -> dict[str, bytes]:
    store = stack.emulator.state.store
    listed = store.list_objects(DEV_BUCKET, prefix="", delimiter="", start_after="", max_keys=10**6)
    return {meta.key: store.get(DEV_BUCKET, meta.key)[1] for meta in listed.objects}


async def upload(url: str, fields: dict[str, str], content: bytes, file_name: str) -> int:
    data = aiohttp.FormData()
    for name, value in fields.items():
        data.add_field(name, value)
    data.add_field("file", content, filename=file_name)  # the file field goes last
    async with (
        aiohttp.ClientSession() as http,
        http.post(URL(url, encoded=True), data=data) as answer,
    ):
        await answer.read()
        return answer.status


@pytest.mark.asyncio
async def test_the_emulator_fills_filename_into_a_signed_key_after_the_policy_check(
    stack: Stack,
) -> None:
    """What a form signed for `${filename}` would allow (Satchel never signs one): the
    uploader names the object."""
    any_form = await stack.stub.PresignObject(
        pb.PresignObjectRequest(player_id="p1", key="k", method=pb.HTTP_METHOD_POST), timeout=10
    )
    form = post_form_v4(
        PostPolicyRequest(
            DEV_BUCKET,
            SigningCredentials(DEV_ACCESS_KEY_ID, DEV_ACCESS_KEY_SECRET),
            datetime.now(UTC),
            600,
            key="players/p1/${filename}",
            region=DEV_REGION,
        )
    )
    status = await upload(any_form.url, dict(form.fields), b"chosen", "uploader-chose.dat")
    assert status == 204
    assert stored_keys(stack) == {"players/p1/uploader-chose.dat": b"chosen"}


KEYS = st.text(st.sampled_from("ab1_.-/ é${}"), min_size=1, max_size=16) | st.sampled_from(
    ["${filename}", "saves/${filename}", "a${x}b", "save.dat"]
)
FILE_NAMES = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), max_size=24
) | st.sampled_from(["../p2/save.dat", "${filename}", "a/../../x", "/etc/passwd", ""])


@pytest.mark.asyncio
async def test_every_form_presign_returns_writes_exactly_its_key_or_is_refused(
    stack: Stack,
) -> None:
    loop = asyncio.get_running_loop()
    uploads: list[int] = []

    async def one(key: str, file_name: str) -> None:
        request = pb.PresignObjectRequest(player_id="p1", key=key, method=pb.HTTP_METHOD_POST)
        if "${" in key:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stack.stub.PresignObject(request, timeout=10)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "key: must not contain '${'" in (refused.value.details() or "")
            return
        try:
            form = await stack.stub.PresignObject(request, timeout=10)
        except grpc.aio.AioRpcError as error:
            refusal = error  # another key rule: refused, never signed
        else:
            refusal = None
        if refusal is not None:
            assert refusal.code() == grpc.StatusCode.INVALID_ARGUMENT
            return
        before = stored_keys(stack)
        content = file_name.encode() + b"!"
        status = await upload(form.url, dict(form.form_fields), content, file_name)
        after = stored_keys(stack)
        uploads.append(status)
        if status == 204:
            assert after == {**before, form.key: content}
        else:
            assert after == before

    @settings(max_examples=40, deadline=None)
    @given(key=KEYS, file_name=FILE_NAMES)
    def property_(key: str, file_name: str) -> None:
        asyncio.run_coroutine_threadsafe(one(key, file_name), loop).result(timeout=30)

    await asyncio.to_thread(property_)
    # Refusing every upload would pass the property: forms for good keys must work.
    assert 204 in uploads, uploads


@pytest.mark.asyncio
@pytest.mark.parametrize("acl", ["public-read", "public-read-write", "private"])
async def test_a_form_keeps_the_buckets_acl_whatever_acl_the_uploader_adds(
    stack: Stack, acl: str
) -> None:
    request = pb.PresignObjectRequest(player_id="p1", key="shot.png", method=pb.HTTP_METHOD_POST)
    form = await stack.stub.PresignObject(request, timeout=10)
    fields = dict(form.form_fields)

    widened = {**fields, "x-oss-object-acl": acl}
    assert await upload(form.url, widened, b"mine", "shot.png") == 403
    assert form.key not in stored_keys(stack)

    assert await upload(form.url, fields, b"mine", "shot.png") == 204
    stored = stack.emulator.state.store.head(DEV_BUCKET, form.key)
    assert stored.acl == "default"
