"""The emulator's identity endpoints and STS's checks on them, as strict as the cloud's."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aliyunsdkcore.acs_exception.exceptions import ServerException
from component.identity_fixtures import assume_role_with, dev_emulator, oidc_token

from satchel_server.emulator import accounts as acc
from satchel_server.emulator.runner import Emulator, running_emulator
from satchel_server.emulator.state import EmulatorConfig

__all__ = ["dev_emulator"]

TTL = {"X-aliyun-ecs-metadata-token-ttl-seconds": "60"}
CREDENTIALS = "/latest/meta-data/ram/security-credentials/"


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


async def _token(http: aiohttp.ClientSession, emu: Emulator) -> str:
    async with http.put(emu.metadata_url + "/latest/api/token", headers=TTL) as response:
        assert response.status == 200
        return await response.text()


@pytest.mark.asyncio
@pytest.mark.parametrize("ttl", ["", "0", "21601", "-5", "6h"])
async def test_a_metadata_token_needs_a_ttl_in_range(
    dev_emulator: Emulator, http: aiohttp.ClientSession, ttl: str
) -> None:
    headers = {"X-aliyun-ecs-metadata-token-ttl-seconds": ttl} if ttl else {}
    async with http.put(dev_emulator.metadata_url + "/latest/api/token", headers=headers) as r:
        assert r.status == 400


@pytest.mark.asyncio
@pytest.mark.parametrize("path", [CREDENTIALS, CREDENTIALS + acc.DEV_IDENTITY_ROLE])
async def test_metadata_needs_a_valid_token(
    dev_emulator: Emulator, http: aiohttp.ClientSession, path: str
) -> None:
    url = dev_emulator.metadata_url + path
    async with http.get(url) as response:
        assert response.status == 401
    async with http.get(url, headers={"X-aliyun-ecs-metadata-token": "made-up"}) as response:
        assert response.status == 401
    token = await _token(http, dev_emulator)
    async with http.get(url, headers={"X-aliyun-ecs-metadata-token": token}) as response:
        assert response.status == 200


@pytest.mark.asyncio
async def test_a_metadata_token_expires(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    now = [time.time()]
    async with running_emulator(EmulatorConfig(data_dir=tmp_path), clock=lambda: now[0]) as emu:
        token = await _token(http, emu)
        now[0] += 61
        headers = {"X-aliyun-ecs-metadata-token": token}
        async with http.get(emu.metadata_url + CREDENTIALS, headers=headers) as response:
            assert response.status == 401


@pytest.mark.asyncio
async def test_only_the_instance_role_has_credentials(
    dev_emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    headers = {"X-aliyun-ecs-metadata-token": await _token(http, dev_emulator)}
    async with http.get(dev_emulator.metadata_url + CREDENTIALS, headers=headers) as response:
        assert await response.text() == acc.DEV_IDENTITY_ROLE
    url = dev_emulator.metadata_url + CREDENTIALS + acc.DEV_ROLE
    async with http.get(url, headers=headers) as response:
        assert response.status == 404


@pytest.mark.asyncio
async def test_an_instance_role_must_trust_the_ecs_service(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    # The scope role trusts the account, not ecs.aliyuncs.com: RAM would not attach it.
    config = EmulatorConfig(data_dir=tmp_path, instance_role_arn=acc.DEV_ROLE_ARN)
    async with running_emulator(config) as emu:
        headers = {"X-aliyun-ecs-metadata-token": await _token(http, emu)}
        async with http.get(emu.metadata_url + CREDENTIALS, headers=headers) as response:
            assert response.status == 404


async def _oidc(http: aiohttp.ClientSession, emu: Emulator, **params: str) -> tuple[int, dict]:
    form = {
        "Action": "AssumeRoleWithOIDC",
        "Version": "2015-04-01",
        "Format": "JSON",
        "RoleArn": acc.DEV_IDENTITY_ROLE_ARN,
        "OIDCProviderArn": acc.DEV_OIDC_PROVIDER_ARN,
        "OIDCToken": oidc_token(emu, time.time()),
        "RoleSessionName": "pod",
        **params,
    }
    async with http.post(emu.sts_url + "/", data=form) as response:
        return response.status, json.loads(await response.text())


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("params", "code"),
    [
        (
            {"OIDCProviderArn": f"acs:ram::{acc.DEV_ACCOUNT_ID}:oidc-provider/none"},
            "AuthenticationFail.NoPermission",
        ),
        ({"RoleArn": acc.DEV_ROLE_ARN}, "AuthenticationFail.NoPermission"),
        ({"OIDCToken": "a.b.c"}, "AuthenticationFail.OIDCToken.Invalid"),
        ({"OIDCToken": ""}, "MissingParameter"),
        ({"DurationSeconds": "899"}, "InvalidParameter.DurationSeconds"),
        ({"RoleSessionName": "x"}, "InvalidParameter.RoleSessionName"),
        ({"Version": "2014-01-01"}, "InvalidVersion"),
    ],
)
async def test_assume_role_with_oidc_refuses_what_the_cloud_refuses(
    dev_emulator: Emulator, http: aiohttp.ClientSession, params: dict[str, str], code: str
) -> None:
    status, answer = await _oidc(http, dev_emulator, **params)
    assert answer["Code"] == code
    assert status in (400, 401, 403, 404)
    assert "Credentials" not in answer


@pytest.mark.asyncio
async def test_assume_role_with_oidc_answers_credentials_and_token_info(
    dev_emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    status, answer = await _oidc(http, dev_emulator)
    assert status == 200
    assert answer["OIDCTokenInfo"]["Subject"] == acc.DEV_OIDC_SUBJECT
    assert answer["Credentials"]["SecurityToken"]


def _policy(action: str) -> str:
    statement = {"Effect": "Allow", "Action": action, "Resource": "*"}
    return json.dumps({"Version": "1", "Statement": [statement]})


def _trust(kind: str, principal: str) -> str:
    statement = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {kind: principal}}
    return json.dumps({"Version": "1", "Statement": [statement]})


ECS_TRUST = _trust("Service", "ecs.aliyuncs.com")
# A role that may only read objects, one that may also assume roles, and their target.
ROLE_WITHOUT_ASSUME = f"""
[[accounts]]
id = "{acc.DEV_ACCOUNT_ID}"
[[accounts.roles]]
name = "reader"
policies = ['{_policy("oss:GetObject")}']
trust_policy = '{ECS_TRUST}'
[[accounts.roles]]
name = "chainer"
policies = ['{_policy("sts:AssumeRole")}']
trust_policy = '{ECS_TRUST}'
[[accounts.roles]]
name = "target"
policies = []
trust_policy = '{_trust("RAM", f"acs:ram::{acc.DEV_ACCOUNT_ID}:root")}'
"""


@pytest.mark.asyncio
@pytest.mark.parametrize(("caller", "allowed"), [("reader", False), ("chainer", True)])
async def test_role_chaining_needs_sts_assume_role_in_the_callers_permissions(
    tmp_path: Path, caller: str, allowed: bool
) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(ROLE_WITHOUT_ASSUME)
    caller_arn = f"acs:ram::{acc.DEV_ACCOUNT_ID}:role/{caller}"
    target = f"acs:ram::{acc.DEV_ACCOUNT_ID}:role/target"
    config = EmulatorConfig(data_dir=tmp_path, accounts_file=accounts, uri_role_arn=caller_arn)
    async with running_emulator(config) as emu, aiohttp.ClientSession() as http:
        async with http.get(emu.credentials_uri) as response:
            issued = await response.json()
        key = (issued["AccessKeyId"], issued["AccessKeySecret"], issued["SecurityToken"])
        if allowed:
            answer = await assume_role_with(emu, *key, role_arn=target)
            assert "Credentials" in answer
            return
        with pytest.raises(ServerException) as caught:
            await assume_role_with(emu, *key, role_arn=target)
        assert caught.value.get_error_code() == "NoPermission"
