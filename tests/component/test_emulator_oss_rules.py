"""OSS on the emulator: every negative case expects the real service's code and status;
plus the object rules (Content-MD5, forbid-overwrite, copy, batch delete, key length, body
cap), PostObject, virtual-hosted addressing and fault injection."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import oss2
import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from component.emulator_fixtures import (
    BUCKET,
    REGION,
    assume_role,
    emulator,
    oss2_bucket,
    player_policy,
)

from satchel_server.emulator import accounts as acc
from satchel_server.emulator.faults import FaultPlan
from satchel_server.emulator.runner import Emulator, running_emulator
from satchel_server.emulator.state import EmulatorConfig
from satchel_server.signing import (
    OssRequest,
    PostPolicyRequest,
    SigningCredentials,
    post_form_v1,
    post_form_v4,
    sign_header_v1,
)

__all__ = ["emulator"]

DEV = SigningCredentials(acc.DEV_ACCESS_KEY_ID, acc.DEV_ACCESS_KEY_SECRET)


def _oss_error(call: Any) -> tuple[str, int]:
    with pytest.raises(oss2.exceptions.OssError) as info:
        call()
    return info.value.code, info.value.status


def _player(emu: Emulator, player: str = "12", **kwargs: Any) -> dict[str, str]:
    creds: dict[str, str] = assume_role(emu, policy=player_policy(player), **kwargs)["Credentials"]
    return creds


# --- authentication ---------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
async def test_wrong_secret(emulator: Emulator, v4: bool) -> None:
    auth = oss2.AuthV4 if v4 else oss2.Auth
    bucket = oss2.Bucket(
        auth(acc.DEV_ACCESS_KEY_ID, "wrong"), emulator.oss_url, BUCKET, region=REGION
    )
    code = await asyncio.to_thread(_oss_error, lambda: bucket.put_object("k", b"x"))
    assert code == ("SignatureDoesNotMatch", 403)


@pytest.mark.asyncio
async def test_unknown_key(emulator: Emulator) -> None:
    bucket = oss2.Bucket(oss2.Auth("LTAInobody", "x"), emulator.oss_url, BUCKET)
    code = await asyncio.to_thread(_oss_error, lambda: bucket.get_object("k"))
    assert code == ("InvalidAccessKeyId", 403)


@pytest.mark.asyncio
@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
async def test_tampered_presigned_url(emulator: Emulator, v4: bool) -> None:
    bucket = oss2_bucket(emulator, v4=v4)
    await asyncio.to_thread(bucket.put_object, "k", b"x")
    url = await asyncio.to_thread(bucket.sign_url, "GET", "k", 60)
    name = "x-oss-signature=" if v4 else "Signature="
    head, _, tail = url.partition(name)
    tampered = head + name + ("0" if tail[0] != "0" else "1") + tail[1:]
    other_key = url.replace("/k?", "/other?")
    async with aiohttp.ClientSession() as session:
        for bad in (tampered, other_key):
            async with session.get(bad) as response:
                root = ET.fromstring(await response.read())
                assert response.status == 403
                assert root.findtext("Code") == "SignatureDoesNotMatch"
                assert root.findtext("StringToSign")
                assert root.findtext("RequestId") == response.headers["x-oss-request-id"]


@pytest.mark.asyncio
@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
async def test_expired_presigned_url(emulator: Emulator, v4: bool) -> None:
    bucket = oss2_bucket(emulator, v4=v4)
    await asyncio.to_thread(bucket.put_object, "k", b"x")
    url = await asyncio.to_thread(bucket.sign_url, "GET", "k", 60)
    emulator.faults.set("oss", FaultPlan(clock_offset_s=61))
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 403
        assert ET.fromstring(await response.read()).findtext("Code") == "AccessDenied"


@pytest.mark.asyncio
@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
async def test_request_time_too_skewed(emulator: Emulator, v4: bool) -> None:
    bucket = oss2_bucket(emulator, v4=v4)
    emulator.faults.set("oss", FaultPlan(clock_offset_s=16 * 60))
    code = await asyncio.to_thread(_oss_error, lambda: bucket.put_object("k", b"x"))
    assert code == ("RequestTimeTooSkewed", 403)


@pytest.mark.asyncio
async def test_expired_token(emulator: Emulator) -> None:
    creds = await asyncio.to_thread(_player, emulator, duration=900)
    bucket = oss2_bucket(emulator, creds)
    await asyncio.to_thread(bucket.put_object, "players/12/a", b"x")
    # The emulator's OSS clock moves past the credential's expiry.
    emulator.faults.set("oss", FaultPlan(clock_offset_s=901))
    code = await asyncio.to_thread(_oss_error, lambda: bucket.get_object("players/12/a"))
    assert code == ("SecurityTokenExpired", 403)


@pytest.mark.asyncio
@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
async def test_token_of_another_session(emulator: Emulator, v4: bool) -> None:
    mine = await asyncio.to_thread(_player, emulator, "12")
    theirs = await asyncio.to_thread(_player, emulator, "13")
    mixed = {**mine, "SecurityToken": theirs["SecurityToken"]}
    bucket = oss2_bucket(emulator, mixed, v4=v4)
    code = await asyncio.to_thread(_oss_error, lambda: bucket.get_object("players/12/a"))
    assert code == ("InvalidSecurityToken", 403)


# --- authorization ----------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
async def test_session_policy_limits(emulator: Emulator, v4: bool) -> None:
    creds = await asyncio.to_thread(_player, emulator, "12")
    bucket = oss2_bucket(emulator, creds, v4=v4)
    admin = oss2_bucket(emulator)
    await asyncio.to_thread(admin.put_object, "players/123/x", b"other")
    await asyncio.to_thread(bucket.put_object, "players/12/x", b"mine")
    denied = [
        lambda: bucket.get_object("players/123/x"),
        lambda: bucket.put_object("players/12", b"x"),
        lambda: bucket.put_object("players/13/x", b"x"),
        lambda: bucket.list_objects(prefix="players/1"),
        bucket.list_objects,
        lambda: bucket.list_objects_v2(prefix="players/123/"),
        lambda: bucket.copy_object(BUCKET, "players/123/x", "players/12/copy"),
        lambda: bucket.batch_delete_objects(["players/12/x", "players/13/x"]),
    ]
    for call in denied:
        assert await asyncio.to_thread(_oss_error, call) == ("AccessDenied", 403)
    listed = await asyncio.to_thread(bucket.list_objects, prefix="players/12/")
    assert [o.key for o in listed.object_list] == ["players/12/x"]


@pytest.mark.asyncio
async def test_explicit_deny_in_role_policy(emulator: Emulator) -> None:
    creds = (
        await asyncio.to_thread(
            assume_role,
            emulator,
            role="deny-role",
            external_id="ext-123",
            policy=json.dumps(
                {
                    "Version": "1",
                    "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}],
                }
            ),
        )
    )["Credentials"]
    bucket = oss2_bucket(emulator, creds)
    await asyncio.to_thread(bucket.put_object, "public/x", b"ok")
    code = await asyncio.to_thread(_oss_error, lambda: bucket.put_object("secret/x", b"no"))
    assert code == ("AccessDenied", 403)


# --- object rules -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_object_rules(emulator: Emulator) -> None:
    bucket = oss2_bucket(emulator)

    def run() -> None:
        bucket.put_object("k", b"data")
        assert _oss_error(
            lambda: bucket.put_object("k", b"x", headers={"x-oss-forbid-overwrite": "true"})
        ) == ("FileAlreadyExists", 409)
        bad_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
        assert _oss_error(
            lambda: bucket.put_object("m", b"data", headers={"Content-MD5": bad_md5})
        ) == ("BadDigest", 400)
        assert _oss_error(
            lambda: bucket.put_object("m", b"data", headers={"Content-MD5": "nope"})
        ) == ("InvalidDigest", 400)
        assert _oss_error(lambda: bucket.get_object("missing")) == ("NoSuchKey", 404)
        assert _oss_error(lambda: bucket.head_object("missing")) == ("NoSuchKey", 404)
        missing_bucket = oss2.Bucket(bucket.auth, bucket.endpoint, "no-such-bucket")
        assert _oss_error(lambda: missing_bucket.get_object("k")) == ("NoSuchBucket", 404)
        bucket.put_object("k" * 1023, b"long")
        assert bucket.get_object("k" * 1023).read() == b"long"
        assert _oss_error(lambda: bucket.put_object("k" * 1024, b"x")) == (
            "InvalidObjectName",
            400,
        )
        bucket.copy_object(BUCKET, "k", "copy")
        assert bucket.get_object("copy").read() == b"data"
        assert _oss_error(lambda: bucket.get_object("k", byte_range=(10, 20))) == (
            "InvalidRange",
            416,
        )
        got = bucket.get_object("k", params={"response-content-type": "text/x-test"})
        assert got.headers["Content-Type"] == "text/x-test"
        result = bucket.batch_delete_objects(["k", "copy"])
        assert sorted(result.deleted_keys) == ["copy", "k"]
        assert _oss_error(lambda: bucket.get_object("copy")) == ("NoSuchKey", 404)

    await asyncio.to_thread(run)


@pytest.mark.asyncio
async def test_body_cap(tmp_path: Path) -> None:
    config = EmulatorConfig(data_dir=tmp_path, max_body_bytes=1024)
    async with running_emulator(config) as emu:
        bucket = oss2_bucket(emu)
        await asyncio.to_thread(bucket.put_object, "ok", b"x" * 1024)
        code = await asyncio.to_thread(_oss_error, lambda: bucket.put_object("big", b"x" * 1025))
        assert code == ("EntityTooLarge", 400)


@pytest.mark.asyncio
async def test_virtual_hosted_style(emulator: Emulator) -> None:
    host = f"{BUCKET}.oss-{REGION}.aliyuncs.com"
    signed = sign_header_v1(
        OssRequest(
            method="PUT",
            bucket=BUCKET,
            key="vhost/key",
            credentials=DEV,
            now=datetime.now(UTC),
            headers={"Content-Type": "text/plain"},
        )
    )
    headers = {"Host": host, "Content-Type": "text/plain", **signed.headers}
    async with (
        aiohttp.ClientSession() as session,
        session.put(f"{emulator.oss_url}/vhost/key", data=b"v", headers=headers) as response,
    ):
        assert response.status == 200
    assert emulator.state.store.get(BUCKET, "vhost/key")[1] == b"v"


# --- PostObject -------------------------------------------------------------------------


async def _post(
    emu: Emulator, fields: dict[str, str], data: bytes, *, bucket: str = BUCKET
) -> tuple[int, str]:
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("file", data, filename="upload.bin")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{emu.oss_url}/{bucket}", data=form) as response,
    ):
        body = await response.read()
        code = ET.fromstring(body).findtext("Code") if body.startswith(b"<?xml") else ""
        return response.status, code or ""


def _form(creds: SigningCredentials, v4: bool, *, key: str, max_size: int) -> dict[str, str]:
    request = PostPolicyRequest(
        bucket=BUCKET,
        credentials=creds,
        now=datetime.now(UTC),
        expires=600,
        key=key,
        content_length_range=(1, max_size),
        region=REGION,
    )
    return dict((post_form_v4(request) if v4 else post_form_v1(request)).fields)


@pytest.mark.asyncio
@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
async def test_post_object(emulator: Emulator, v4: bool) -> None:
    raw = await asyncio.to_thread(_player, emulator, "12")
    creds = SigningCredentials(raw["AccessKeyId"], raw["AccessKeySecret"], raw["SecurityToken"])
    fields = _form(creds, v4, key="players/12/post.bin", max_size=10)
    assert await _post(emulator, fields, b"0123456789") == (204, "")
    assert emulator.state.store.get(BUCKET, "players/12/post.bin")[1] == b"0123456789"
    assert await _post(emulator, {**fields, "success_action_status": "201"}, b"x") == (201, "")
    # Over the policy's content-length-range.
    assert await _post(emulator, fields, b"x" * 11) == (400, "EntityTooLarge")
    # A bucket field naming another bucket is refused, not ignored.
    assert await _post(emulator, {**fields, "bucket": "other-bucket"}, b"x") == (
        403,
        "AccessDenied",
    )
    # A key other than the policy's.
    assert await _post(emulator, {**fields, "key": "players/12/other"}, b"x") == (
        403,
        "AccessDenied",
    )
    # A policy for a key outside the session policy is signed fine but denied by RAM.
    outside = _form(creds, v4, key="players/13/x", max_size=10)
    assert await _post(emulator, outside, b"x") == (403, "AccessDenied")
    # A field after the file is never read, so it cannot override what was checked.
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("file", b"ok", filename="f")
    form.add_field("key", "players/12/sneaky")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{emulator.oss_url}/{BUCKET}", data=form) as response,
    ):
        assert response.status == 204
    assert emulator.state.store.get(BUCKET, "players/12/post.bin")[1] == b"ok"
    # The policy's expiration is enforced with the emulator's clock.
    emulator.faults.set("oss", FaultPlan(clock_offset_s=601))
    assert await _post(emulator, fields, b"x") == (403, "AccessDenied")
    emulator.faults.clear()
    tampered = {**fields, "policy": fields["policy"][:-4] + "AAAA"}
    assert (await _post(emulator, tampered, b"x"))[1] == "SignatureDoesNotMatch"


# --- faults -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_oss_faults(emulator: Emulator) -> None:
    bucket = oss2_bucket(emulator)
    bucket.timeout = 5
    emulator.faults.set("oss", FaultPlan(status=503, count=1))
    code = await asyncio.to_thread(_oss_error, lambda: bucket.put_object("k", b"x"))
    assert code == ("ServiceUnavailable", 503)
    await asyncio.to_thread(bucket.put_object, "k", b"x")  # the count is spent
    emulator.faults.set("oss", FaultPlan(malformed="html", count=1))
    async with aiohttp.ClientSession() as session, session.get(f"{emulator.oss_url}/x") as r:
        assert r.status == 502
        assert (await r.text()).startswith("<html>")
    # Until cleared: aiohttp's client retries a dropped idempotent request once by itself.
    emulator.faults.set("oss", FaultPlan(drop=True))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with session.get(f"{emulator.oss_url}/{BUCKET}/k"):
                pass
    emulator.faults.clear("oss")
    await asyncio.to_thread(bucket.get_object, "k")


@pytest.mark.asyncio
async def test_admin_endpoint(tmp_path: Path) -> None:
    async with running_emulator(EmulatorConfig(data_dir=tmp_path, admin_port=0)) as emu:
        assert emu.admin_url is not None
        async with aiohttp.ClientSession() as session:
            async with session.put(
                f"{emu.admin_url}/faults/sts", json={"throttle": True, "count": 1}
            ) as response:
                assert response.status == 200
            result = await asyncio.to_thread(_assume_error, emu)
            assert result == ("Throttling.User", 400)
            async with session.get(f"{emu.admin_url}/stats") as response:
                stats = await response.json()
            assert stats == {"assume_role_calls": 1, "assume_role_issued": 0}
            await asyncio.to_thread(assume_role, emu)
            async with session.delete(f"{emu.admin_url}/faults") as response:
                assert response.status == 204
            async with session.put(f"{emu.admin_url}/faults/sts", json={"bogus": 1}) as response:
                assert response.status == 400
    assert emu.counters.assume_role_issued == 1


def _assume_error(emu: Emulator) -> tuple[str, int]:
    with pytest.raises(ServerException) as info:
        assume_role(emu)
    return info.value.get_error_code(), info.value.get_http_status()
