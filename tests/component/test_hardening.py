"""Hardening: the role's policy is a ceiling, Deny wins, and near-miss keys stay denied."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import oss2
import pytest
import pytest_asyncio
from component.emulator_fixtures import ACCOUNTS_TOML, oss2_bucket
from support.stack import Stack, running_stack
from yarl import URL

from satchel.v1 import token_service_pb2 as pb
from satchel_server.emulator import accounts as acc
from satchel_server.emulator.runner import Emulator, running_emulator
from satchel_server.emulator.state import EmulatorConfig
from satchel_server.signing import verify
from satchel_server.wiring import dev_settings

BUCKET = acc.DEV_BUCKET


def role(name: str, statements: list[dict[str, object]]) -> str:
    policy = json.dumps({"Version": "1", "Statement": statements})
    return f"""
[[accounts.roles]]
name = "{name}"
trusted_users = ["{acc.DEV_USER}"]
policies = ['{policy}']
"""


# The shared test accounts plus two roles; a later [[accounts.roles]] table joins
# the last [[accounts]] entry, the dev account.
ACCOUNTS = (
    ACCOUNTS_TOML
    + role("get-only", [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}])
    + role(
        "deny-trophies",
        [
            {"Effect": "Allow", "Action": "oss:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "oss:PutObject",
                "Resource": f"acs:oss:*:*:{BUCKET}/players/*/trophies/*",
            },
        ],
    )
)


@pytest_asyncio.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(ACCOUNTS)
    config = EmulatorConfig(data_dir=tmp_path / "data", accounts_file=accounts)
    async with running_emulator(config) as emu:
        yield emu


@asynccontextmanager
async def stack_with_role(emulator: Emulator, role_name: str) -> AsyncIterator[Stack]:
    settings = dev_settings("127.0.0.1:0", emulator)
    scope = dataclasses.replace(
        settings.scopes["dev"], role_arn=f"acs:ram::{acc.DEV_ACCOUNT_ID}:role/{role_name}"
    )
    async with running_stack(emulator, dataclasses.replace(settings, scopes={"dev": scope})) as st:
        yield st


async def token_bucket(stack: Stack, player: str) -> object:
    reply = await stack.stub.IssueToken(
        pb.IssueTokenRequest(
            player_id=player,
            permissions=[pb.PERMISSION_READ, pb.PERMISSION_WRITE, pb.PERMISSION_LIST],
        ),
        timeout=10,
    )
    creds = {
        "AccessKeyId": reply.credentials.access_key_id,
        "AccessKeySecret": reply.credentials.access_key_secret,
        "SecurityToken": reply.credentials.security_token,
    }
    return oss2_bucket(stack.emulator, creds)


def code_of(call: object) -> str:
    try:
        call()  # type: ignore[operator]
    except oss2.exceptions.OssError as error:
        return str(error.code)
    return "ok"


@pytest.mark.asyncio
async def test_the_role_policy_is_a_ceiling_a_session_policy_cannot_raise(
    emulator: Emulator,
) -> None:
    admin = oss2_bucket(emulator)
    await asyncio.to_thread(admin.put_object, "players/12/save.dat", b"seed")
    async with stack_with_role(emulator, "get-only") as stack:
        bucket = await token_bucket(stack, "12")
        get = await asyncio.to_thread(code_of, lambda: bucket.get_object("players/12/save.dat"))
        put = await asyncio.to_thread(code_of, lambda: bucket.put_object("players/12/x", b"x"))
        assert (get, put) == ("ok", "AccessDenied")


@pytest.mark.asyncio
async def test_an_explicit_deny_in_the_role_survives_a_session_allow(emulator: Emulator) -> None:
    async with stack_with_role(emulator, "deny-trophies") as stack:
        bucket = await token_bucket(stack, "12")
        saves = await asyncio.to_thread(code_of, lambda: bucket.put_object("players/12/s", b"s"))
        trophy = await asyncio.to_thread(
            code_of, lambda: bucket.put_object("players/12/trophies/gold", b"forged")
        )
        assert (saves, trophy) == ("ok", "AccessDenied")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "key", ["players/12/x", "players/123/x", "players/12", "players/12x", "players/1/x"]
)
async def test_player_12_reaches_exactly_its_own_folder(emulator: Emulator, key: str) -> None:
    async with stack_with_role(emulator, acc.DEV_ROLE) as stack:
        bucket = await token_bucket(stack, "12")
        outcome = await asyncio.to_thread(code_of, lambda: bucket.put_object(key, b"x"))
        assert outcome == ("ok" if key == "players/12/x" else "AccessDenied")
        listing = await asyncio.to_thread(code_of, lambda: bucket.list_objects(prefix="players/1"))
        assert listing == "AccessDenied"


@pytest.mark.asyncio
async def test_the_emulator_compares_signatures_in_constant_time(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every signature check goes through hmac.compare_digest, never ==."""
    compared: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(verify, "hmac", types.SimpleNamespace(compare_digest=spy))
    admin = oss2_bucket(emulator)
    url = admin.sign_url("GET", "players/12/save.dat", 60)
    forged = url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBB")
    async with aiohttp.ClientSession() as http, http.get(URL(forged, encoded=True)) as response:
        assert response.status == 403
    assert compared, "no constant-time comparison happened"
    provided = unquote(forged.rsplit("Signature=", 1)[1]).encode()
    assert any(provided in pair for pair in compared)
