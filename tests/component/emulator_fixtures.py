"""Shared helpers for the emulator's component tests: a running emulator and SDK clients.

The SDKs are blocking, so tests call them through `asyncio.to_thread` while the emulator
serves in the test's own event loop on 127.0.0.1:0.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import alibabacloud_oss_v2 as oss_v2
import oss2
import pytest_asyncio
from aliyunsdkcore.client import AcsClient
from aliyunsdksts.request.v20150401.AssumeRoleRequest import AssumeRoleRequest

from satchel_server.emulator import accounts as acc
from satchel_server.emulator.runner import Emulator, running_emulator
from satchel_server.emulator.state import EmulatorConfig

REGION = acc.DEV_REGION
BUCKET = acc.DEV_BUCKET

DENY_ROLE_POLICY = json.dumps(
    {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "oss:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "oss:*", "Resource": f"acs:oss:*:*:{BUCKET}/secret/*"},
        ],
    }
)

# The dev account again, plus a role whose policy allows everything but explicitly denies one
# prefix (and wants an ExternalId), and a role nobody is trusted to assume. JSON has no single
# quotes, so each policy fits in a TOML literal string.
ACCOUNTS_TOML = f"""
[[accounts]]
id = "{acc.DEV_ACCOUNT_ID}"
[[accounts.users]]
name = "{acc.DEV_USER}"
access_key_id = "{acc.DEV_ACCESS_KEY_ID}"
access_key_secret = "{acc.DEV_ACCESS_KEY_SECRET}"
[[accounts.roles]]
name = "{acc.DEV_ROLE}"
trusted_users = ["{acc.DEV_USER}"]
max_session_duration = 3600
policies = ['{acc.DEV_ROLE_POLICY}']
[[accounts.roles]]
name = "deny-role"
trusted_users = ["{acc.DEV_USER}"]
external_id = "ext-123"
policies = ['{DENY_ROLE_POLICY}']
[[accounts.roles]]
name = "untrusted"
trusted_users = []
policies = []
[[accounts.buckets]]
name = "{BUCKET}"
region = "{REGION}"
"""


@pytest_asyncio.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    """The emulator with its built-in dev account plus the roles above."""
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(ACCOUNTS_TOML)
    config = EmulatorConfig(data_dir=tmp_path / "data", accounts_file=accounts)
    async with running_emulator(config) as emu:
        yield emu


def role_arn(name: str) -> str:
    return f"acs:ram::{acc.DEV_ACCOUNT_ID}:role/{name}"


def assume_role(
    emu: Emulator,
    *,
    role: str = acc.DEV_ROLE,
    session_name: str = "player-12",
    policy: str | None = None,
    duration: int | None = None,
    external_id: str | None = None,
    secret: str = acc.DEV_ACCESS_KEY_SECRET,
) -> dict[str, Any]:
    """AssumeRole through aliyun-python-sdk-sts (RPC 1.0), endpoint pointed at the emulator."""
    client = AcsClient(acc.DEV_ACCESS_KEY_ID, secret, REGION)
    request = AssumeRoleRequest()
    request.set_accept_format("JSON")
    request.set_protocol_type("http")
    # The per-request endpoint wins over the SDK's endpoint resolution.
    request.set_endpoint(emu.sts_url.removeprefix("http://"))
    request.set_RoleArn(role_arn(role))
    request.set_RoleSessionName(session_name)
    if policy is not None:
        request.set_Policy(policy)
    if duration is not None:
        request.set_DurationSeconds(duration)
    if external_id is not None:
        request.set_ExternalId(external_id)
    result: dict[str, Any] = json.loads(client.do_action_with_exception(request))
    return result


def player_policy(player: str) -> str:
    return json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "oss:GetObject",
                        "oss:PutObject",
                        "oss:DeleteObject",
                        "oss:AbortMultipartUpload",
                        "oss:ListParts",
                    ],
                    "Resource": [f"acs:oss:*:*:{BUCKET}/players/{player}/*"],
                },
                {
                    "Effect": "Allow",
                    "Action": "oss:ListObjects",
                    "Resource": f"acs:oss:*:*:{BUCKET}",
                    "Condition": {
                        "StringLike": {"oss:Prefix": [f"players/{player}/", f"players/{player}/*"]}
                    },
                },
            ],
        },
        separators=(",", ":"),
    )


def oss2_bucket(emu: Emulator, creds: dict[str, str] | None = None, *, v4: bool = False) -> Any:
    """An oss2.Bucket on the emulator: the dev RAM user's key, or STS credentials."""
    version = oss2.AUTH_VERSION_4 if v4 else oss2.AUTH_VERSION_1
    if creds is None:
        auth: Any = (
            oss2.AuthV4(acc.DEV_ACCESS_KEY_ID, acc.DEV_ACCESS_KEY_SECRET)
            if v4
            else oss2.Auth(acc.DEV_ACCESS_KEY_ID, acc.DEV_ACCESS_KEY_SECRET)
        )
    else:
        auth = oss2.StsAuth(
            creds["AccessKeyId"],
            creds["AccessKeySecret"],
            creds["SecurityToken"],
            auth_version=version,
        )
    return oss2.Bucket(auth, emu.oss_url, BUCKET, region=REGION if v4 else None)


def v2_client(emu: Emulator, creds: dict[str, str] | None = None) -> oss_v2.Client:
    """An alibabacloud-oss-v2 client (V4 signatures), path-style against the emulator."""
    if creds is None:
        provider = oss_v2.credentials.StaticCredentialsProvider(
            acc.DEV_ACCESS_KEY_ID, acc.DEV_ACCESS_KEY_SECRET
        )
    else:
        provider = oss_v2.credentials.StaticCredentialsProvider(
            creds["AccessKeyId"], creds["AccessKeySecret"], creds["SecurityToken"]
        )
    config = oss_v2.config.load_default()
    config.credentials_provider = provider
    config.region = REGION
    config.endpoint = emu.oss_url
    config.use_path_style = True
    config.retry_max_attempts = 1
    return oss_v2.Client(config)
