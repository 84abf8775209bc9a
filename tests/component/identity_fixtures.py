"""Helpers for the identity tests: the emulator with the dev account, tokens, settings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdksts.request.v20150401.AssumeRoleRequest import AssumeRoleRequest

from satchel_server.config import Settings, settings_from_mapping
from satchel_server.emulator import accounts as acc
from satchel_server.emulator.runner import Emulator, running_emulator
from satchel_server.emulator.state import EmulatorConfig

SCOPE = {
    "bucket": acc.DEV_BUCKET,
    "region": acc.DEV_REGION,
    "role_arn": acc.DEV_ROLE_ARN,
    "endpoint": "http://127.0.0.1:9",
}


@pytest_asyncio.fixture
async def dev_emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    """The emulator with its built-in dev account (identity role, OIDC provider)."""
    async with running_emulator(EmulatorConfig(data_dir=tmp_path / "data")) as emu:
        yield emu


def oidc_token(emu: Emulator, now: float, *, ttl: float = 3600, **claims: str) -> str:
    """A token from the dev OIDC provider, as a cluster projects it into a pod."""
    provider = emu.directory.oidc_provider(acc.DEV_OIDC_PROVIDER_ARN)
    assert provider is not None
    return provider.mint(
        claims.get("sub", acc.DEV_OIDC_SUBJECT),
        claims.get("aud", acc.DEV_OIDC_AUDIENCE),
        now,
        ttl,
    )


def identity_settings(
    emu: Emulator, source: str, environ: dict[str, str], **identity: object
) -> Settings:
    """Settings whose STS and metadata service are the emulator's."""
    document = {
        "sts": {"endpoint": emu.sts_url},
        "identity": {"source": source, "metadata_endpoint": emu.metadata_url, **identity},
        "scopes": {"saves": SCOPE},
    }
    return settings_from_mapping(document, environ)


def _assume_role_signed_by(
    emu: Emulator, key_id: str, secret: str, token: str, role_arn: str
) -> dict[str, object]:
    credential = StsTokenCredential(key_id, secret, token)
    client = AcsClient(credential=credential, region_id=acc.DEV_REGION)
    request = AssumeRoleRequest()
    request.set_accept_format("JSON")
    request.set_protocol_type("http")
    request.set_endpoint(emu.sts_url.removeprefix("http://"))
    request.set_RoleArn(role_arn)
    request.set_RoleSessionName("satchel-chained")
    request.set_DurationSeconds(900)
    answer: dict[str, object] = json.loads(client.do_action_with_exception(request))
    return answer


async def assume_role_with(
    emu: Emulator, key_id: str, secret: str, token: str, role_arn: str = acc.DEV_ROLE_ARN
) -> dict[str, object]:
    """AssumeRole signed (aliyun-python-sdk-core) with temporary credentials and their token."""
    return await asyncio.to_thread(_assume_role_signed_by, emu, key_id, secret, token, role_arn)
