"""STS AssumeRole on the emulator, driven by the official SDKs and by raw signed requests.

aliyun-python-sdk-sts signs RPC 1.0; alibabacloud-sts20150401 signs ACS3-HMAC-SHA256 by
default and RPC 1.0 with `signature_algorithm="v2"`. Negative cases expect the real
service's error code and HTTP status.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi import models as openapi_models
from aliyunsdkcore.acs_exception.exceptions import ServerException
from component.emulator_fixtures import (
    assume_role,
    emulator,
    player_policy,
    role_arn,
)

from satchel_server.emulator import accounts as acc
from satchel_server.emulator.faults import FaultPlan
from satchel_server.emulator.runner import Emulator, serve
from satchel_server.emulator.state import EmulatorConfig
from satchel_server.signing import RpcRequest, SigningCredentials, sign_rpc

__all__ = ["emulator"]  # the fixture, imported so pytest finds it

_EXPIRATION = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _check_credentials(result: dict[str, Any]) -> None:
    creds = result["Credentials"]
    assert creds["AccessKeyId"].startswith("STS.")
    assert creds["AccessKeySecret"]
    assert creds["SecurityToken"]
    assert _EXPIRATION.match(creds["Expiration"])
    assert result["RequestId"]
    assert result["AssumedRoleUser"]["Arn"] == f"{role_arn(acc.DEV_ROLE)}/player-12"
    assert result["AssumedRoleUser"]["AssumedRoleId"].endswith(":player-12")


@pytest.mark.asyncio
async def test_aliyun_sdk_assume_role(emulator: Emulator) -> None:
    result = await asyncio.to_thread(assume_role, emulator, policy=player_policy("12"))
    _check_credentials(result)
    assert emulator.counters.assume_role_calls == 1
    assert emulator.counters.assume_role_issued == 1
    session = emulator.directory.session_by_key(result["Credentials"]["AccessKeyId"])
    assert session is not None
    expires = datetime.strptime(result["Credentials"]["Expiration"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(expires.replace(tzinfo=UTC).timestamp() - session.expiration) < 1


def _tea_assume(emu: Emulator, algorithm: str | None) -> dict[str, Any]:
    config = openapi_models.Config(
        access_key_id=acc.DEV_ACCESS_KEY_ID,
        access_key_secret=acc.DEV_ACCESS_KEY_SECRET,
        endpoint=emu.sts_url.removeprefix("http://"),
        protocol="http",
        region_id=acc.DEV_REGION,
    )
    if algorithm is not None:
        config.signature_algorithm = algorithm
    client = StsClient(config)
    response = client.assume_role(
        sts_models.AssumeRoleRequest(
            role_arn=role_arn(acc.DEV_ROLE),
            role_session_name="player-12",
            duration_seconds=900,
            policy=player_policy("12"),
        )
    )
    body: dict[str, Any] = response.body.to_map()
    return body


@pytest.mark.asyncio
@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["acs3", "rpc-1.0"])
async def test_tea_sdk_assume_role(emulator: Emulator, algorithm: str | None) -> None:
    result = await asyncio.to_thread(_tea_assume, emulator, algorithm)
    _check_credentials(result)


def _error_of(call: Any) -> tuple[str, int]:
    with pytest.raises(ServerException) as info:
        call()
    return info.value.get_error_code(), info.value.get_http_status()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("kwargs", "code", "status"),
    [
        # The SDK renames the service's SignatureDoesNotMatch when the server's StringToSign
        # (echoed in the message) equals its own: the request was intact, the secret wrong.
        ({"secret": "wrong-secret"}, "InvalidAccessKeySecret", 400),
        ({"role": "no-such-role"}, "EntityNotExist.Role", 404),
        ({"role": "untrusted"}, "NoPermission", 403),
        ({"session_name": "a"}, "InvalidParameter.RoleSessionName", 400),
        ({"session_name": "bad name!"}, "InvalidParameter.RoleSessionName", 400),
        ({"session_name": "x" * 65}, "InvalidParameter.RoleSessionName", 400),
        # A trailing newline is a character like any other, never the end of the value.
        ({"session_name": "player-12\n"}, "InvalidParameter.RoleSessionName", 400),
        ({"external_id": "ext-123\n"}, "InvalidParameter.ExternalId", 400),
        ({"role": acc.DEV_ROLE + "\n"}, "InvalidParameter.RoleArn", 400),
        ({"duration": 899}, "InvalidParameter.DurationSeconds", 400),
        ({"duration": 3601}, "InvalidParameter.DurationSeconds", 400),
        ({"policy": '{"Version":"1"}'}, "InvalidParameter.PolicyGrammar", 400),
        ({"policy": "x" * 2049}, "InvalidParameter.PolicySize", 400),
        ({"role": "deny-role"}, "NoPermission", 403),
        ({"role": "deny-role", "external_id": "ext-999"}, "NoPermission", 403),
    ],
)
async def test_assume_role_rejections(
    emulator: Emulator, kwargs: dict[str, Any], code: str, status: int
) -> None:
    result = await asyncio.to_thread(_error_of, lambda: assume_role(emulator, **kwargs))
    assert result == (code, status)


@pytest.mark.asyncio
async def test_external_id_and_limits_accept(emulator: Emulator) -> None:
    ok = await asyncio.to_thread(
        assume_role, emulator, role="deny-role", external_id="ext-123", duration=900
    )
    assert ok["Credentials"]["AccessKeyId"].startswith("STS.")
    ok = await asyncio.to_thread(
        assume_role,
        emulator,
        session_name="a.b@c_d-e",
        duration=3600,
        policy=player_policy("1" * 64),
    )
    assert ok["Credentials"]["AccessKeyId"].startswith("STS.")


# --- raw signed requests: what the SDKs never send ----------------------------------------


def _signed(
    *,
    credentials: SigningCredentials | None = None,
    nonce: str | None = None,
    timestamp: datetime | None = None,
    fmt: str = "JSON",
    params: dict[str, str] | None = None,
) -> str:
    creds = credentials or SigningCredentials(acc.DEV_ACCESS_KEY_ID, acc.DEV_ACCESS_KEY_SECRET)
    signed = sign_rpc(
        RpcRequest(
            method="GET",
            action="AssumeRole",
            version="2015-04-01",
            credentials=creds,
            timestamp=timestamp or datetime.now(UTC),
            nonce=nonce or str(uuid.uuid4()),
            params=params or {"RoleArn": role_arn(acc.DEV_ROLE), "RoleSessionName": "player-12"},
            format=fmt,
        )
    )
    return signed.query


async def _get(emu: Emulator, query: str) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{emu.sts_url}/?{query}") as response,
    ):
        return response.status, response.headers.get("Content-Type", ""), await response.text()


@pytest.mark.asyncio
async def test_raw_success_json_and_xml(emulator: Emulator) -> None:
    status, _, text = await _get(emulator, _signed())
    assert status == 200
    assert json.loads(text)["Credentials"]["AccessKeyId"].startswith("STS.")
    status, content_type, text = await _get(emulator, _signed(fmt="XML"))
    assert status == 200
    assert "xml" in content_type
    assert "<AssumeRoleResponse><RequestId>" in text
    assert "<Credentials><SecurityToken>" in text


async def _code(emu: Emulator, query: str) -> tuple[int, str]:
    status, _, text = await _get(emu, query)
    body = json.loads(text)
    assert body["RequestId"]
    assert body["HostId"]
    return status, body["Code"]


@pytest.mark.asyncio
async def test_tampered_signature(emulator: Emulator) -> None:
    query = _signed().replace("RoleSessionName=player-12", "RoleSessionName=player-13")
    assert await _code(emulator, query) == (400, "SignatureDoesNotMatch")


@pytest.mark.asyncio
async def test_nonce_reuse(emulator: Emulator) -> None:
    nonce = str(uuid.uuid4())
    assert (await _get(emulator, _signed(nonce=nonce)))[0] == 200
    assert await _code(emulator, _signed(nonce=nonce)) == (400, "SignatureNonceUsed")


@pytest.mark.asyncio
async def test_timestamp_skew(emulator: Emulator) -> None:
    old = datetime.now(UTC) - timedelta(minutes=20)
    assert await _code(emulator, _signed(timestamp=old)) == (400, "InvalidTimeStamp.Expired")
    # The same holds when it is the emulator's clock that is off.
    emulator.faults.set("sts", FaultPlan(clock_offset_s=3600))
    assert await _code(emulator, _signed()) == (400, "InvalidTimeStamp.Expired")


@pytest.mark.asyncio
async def test_unknown_key_and_sts_key_refused(emulator: Emulator) -> None:
    unknown = SigningCredentials("LTAIunknown", "whatever")
    assert await _code(emulator, _signed(credentials=unknown)) == (
        404,
        "InvalidAccessKeyId.NotFound",
    )
    creds = (await asyncio.to_thread(assume_role, emulator))["Credentials"]
    sts_creds = SigningCredentials(
        creds["AccessKeyId"], creds["AccessKeySecret"], creds["SecurityToken"]
    )
    assert await _code(emulator, _signed(credentials=sts_creds)) == (403, "NoPermission")


@pytest.mark.asyncio
async def test_missing_and_bad_parameters(emulator: Emulator) -> None:
    assert await _code(emulator, _signed(params={"RoleSessionName": "p1"})) == (
        400,
        "MissingRoleArn",
    )
    assert await _code(
        emulator, _signed(params={"RoleArn": "arn:nope", "RoleSessionName": "p1"})
    ) == (400, "InvalidParameter.RoleArn")


@pytest.mark.asyncio
async def test_rate_limit_is_throttling_user(emulator: Emulator) -> None:
    frozen = emulator.state.clock()
    emulator.state.clock = lambda: frozen  # every call lands in the same second
    statuses = [await _get(emulator, _signed()) for _ in range(101)]
    assert [s for s, _, _ in statuses[:100]] == [200] * 100
    status, _, text = statuses[100]
    assert (status, json.loads(text)["Code"]) == (400, "Throttling.User")
    assert emulator.counters.assume_role_issued == 100


@pytest.mark.asyncio
async def test_sts_faults(emulator: Emulator) -> None:
    emulator.faults.set("sts", FaultPlan(status=503, count=1))
    status, _, text = await _get(emulator, _signed())
    assert (status, json.loads(text)["Code"]) == (503, "ServiceUnavailable")
    emulator.faults.set("sts", FaultPlan(status=500, count=1))
    status, _, text = await _get(emulator, _signed())
    assert (status, json.loads(text)["Code"]) == (500, "InternalError")
    emulator.faults.set("sts", FaultPlan(malformed="json", count=1))
    status, _, text = await _get(emulator, _signed())
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(text)
    emulator.faults.set("sts", FaultPlan(malformed="empty", count=1))
    assert (await _get(emulator, _signed()))[::2] == (200, "")
    emulator.faults.set("sts", FaultPlan(latency_s=0.01, count=1))
    assert (await _get(emulator, _signed()))[0] == 200
    # Every attempt counts, faulted or not; only the last one issued credentials.
    assert emulator.counters.assume_role_calls == 5
    assert emulator.counters.assume_role_issued == 1


@pytest.mark.asyncio
async def test_post_form_body(emulator: Emulator) -> None:
    creds = SigningCredentials(acc.DEV_ACCESS_KEY_ID, acc.DEV_ACCESS_KEY_SECRET)
    signed = sign_rpc(
        RpcRequest(
            method="POST",
            action="AssumeRole",
            version="2015-04-01",
            credentials=creds,
            timestamp=datetime.now(UTC),
            nonce=str(uuid.uuid4()),
            body_params={
                "RoleArn": role_arn(acc.DEV_ROLE),
                "RoleSessionName": "player-12",
                "Policy": player_policy("12"),
            },
        )
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{emulator.sts_url}/?{signed.query}", data=signed.body.encode(), headers=headers
        ) as response,
    ):
        assert response.status == 200
        credentials = (await response.json())["Credentials"]
    session_ = emulator.directory.session_by_key(credentials["AccessKeyId"])
    assert session_ is not None
    assert session_.session_policy is not None


@pytest.mark.asyncio
async def test_serve_until_cancelled(tmp_path: Path) -> None:
    ready: list[Emulator] = []
    started = asyncio.Event()

    def on_ready(emu: Emulator) -> None:
        ready.append(emu)
        started.set()

    task = asyncio.create_task(serve(EmulatorConfig(data_dir=tmp_path), on_ready=on_ready))
    await started.wait()
    status, _, _ = await _get(ready[0], _signed())
    assert status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
