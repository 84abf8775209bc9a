"""Satchel's own identity, each source end to end against the emulator, on Satchel's transport.

Every source's credentials then sign a real AssumeRole of the scope role (role chaining, the
SecurityToken verified by the emulator's STS), as `satchel serve` does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from component.identity_fixtures import SCOPE, dev_emulator, identity_settings, oidc_token

from satchel_server import cli
from satchel_server.config import (
    ACCESS_KEY_ID_ENV,
    ACCESS_KEY_SECRET_ENV,
    CREDENTIALS_URI_ENV,
    ECS_METADATA_DISABLED_ENV,
    OIDC_PROVIDER_ARN_ENV,
    OIDC_TOKEN_FILE_ENV,
    ROLE_ARN_ENV,
    SECURITY_TOKEN_ENV,
    Settings,
    settings_from_mapping,
)
from satchel_server.credentials.broker import AssumeRoleRequest
from satchel_server.credentials.identity import RefreshingIdentity
from satchel_server.emulator import accounts as acc
from satchel_server.emulator.runner import Emulator, running_emulator
from satchel_server.emulator.state import EmulatorConfig
from satchel_server.errors import ConfigError
from satchel_server.sts.client import AliyunStsClient
from satchel_server.sts.http import new_session
from satchel_server.sts.identity_sources import identity_source
from satchel_server.wiring import own_access_key, resolve_identity

__all__ = ["dev_emulator"]

REQUEST = AssumeRoleRequest(acc.DEV_ROLE_ARN, "satchel-p1", "", 900)


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with new_session() as opened:
        yield opened


def oidc_environ(emu: Emulator, folder: Path, **claims: str) -> dict[str, str]:
    token_file = folder / "token"
    token_file.write_text(oidc_token(emu, emu.state.now("sts"), **claims))
    return {
        ROLE_ARN_ENV: acc.DEV_IDENTITY_ROLE_ARN,
        OIDC_PROVIDER_ARN_ENV: acc.DEV_OIDC_PROVIDER_ARN,
        OIDC_TOKEN_FILE_ENV: str(token_file),
    }


async def chain_once(
    settings: Settings, session: aiohttp.ClientSession, identity: RefreshingIdentity
) -> str:
    """AssumeRole of the scope role signed by `identity`; the new AccessKeyId."""
    sts = AliyunStsClient(session, settings.sts, identity)
    deadline = asyncio.get_running_loop().time() + 10
    result = await sts.assume_role(REQUEST, deadline=deadline)
    return result.credentials.access_key_id


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("oidc", "oidc"),
        ("ecs_ram_role", "ecs_ram_role"),
        ("credentials_uri", "credentials_uri"),
        ("default", "oidc"),
    ],
)
async def test_each_source_yields_credentials_that_sign_assume_role(
    dev_emulator: Emulator,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    source: str,
    expected: str,
) -> None:
    environ = {
        **oidc_environ(dev_emulator, tmp_path),
        CREDENTIALS_URI_ENV: dev_emulator.credentials_uri,
    }
    if source == "credentials_uri":
        environ = {CREDENTIALS_URI_ENV: dev_emulator.credentials_uri}
    settings = identity_settings(dev_emulator, source, environ)
    identity = await resolve_identity(settings, session)
    assert identity.source_name == expected
    current = await identity.current()
    assert current.security_token
    assert current.expiration is not None
    before = dev_emulator.counters.assume_role_issued
    assert (await chain_once(settings, session, identity)).startswith("STS.")
    assert dev_emulator.counters.assume_role_issued == before + 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("environ_of", "expected"),
    [
        # An AccessKey in the environment comes first, as in the official chain.
        (
            lambda emu, folder: {
                ACCESS_KEY_ID_ENV: acc.DEV_ACCESS_KEY_ID,
                ACCESS_KEY_SECRET_ENV: acc.DEV_ACCESS_KEY_SECRET,
                **oidc_environ(emu, folder),
            },
            "env",
        ),
        # Without OIDC variables, the instance's role; the URI only after it.
        (lambda emu, folder: {CREDENTIALS_URI_ENV: emu.credentials_uri}, "ecs_ram_role"),
        (
            lambda emu, folder: {
                CREDENTIALS_URI_ENV: emu.credentials_uri,
                ECS_METADATA_DISABLED_ENV: "true",
            },
            "credentials_uri",
        ),
    ],
)
async def test_the_default_chain_takes_the_first_source_that_yields(
    dev_emulator: Emulator,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    environ_of: object,
    expected: str,
) -> None:
    environ = environ_of(dev_emulator, tmp_path)  # type: ignore[operator]
    settings = identity_settings(dev_emulator, "default", environ)
    identity = await resolve_identity(settings, session)
    assert identity.source_name == expected
    assert (await chain_once(settings, session, identity)).startswith("STS.")


@pytest.mark.asyncio
async def test_acs3_signatures_carry_the_security_token_too(
    dev_emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    environ = {CREDENTIALS_URI_ENV: dev_emulator.credentials_uri}
    rpc = identity_settings(dev_emulator, "credentials_uri", environ)
    settings = dataclasses.replace(rpc, sts=dataclasses.replace(rpc.sts, signature="acs3"))
    identity = await resolve_identity(settings, session)
    assert (await chain_once(settings, session, identity)).startswith("STS.")


@pytest.mark.asyncio
async def test_an_sts_token_from_the_environment_signs_with_its_security_token(
    dev_emulator: Emulator, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    uri = identity_settings(
        dev_emulator, "credentials_uri", {CREDENTIALS_URI_ENV: dev_emulator.credentials_uri}
    )
    issued = await (await resolve_identity(uri, session)).current()
    environ = {
        ACCESS_KEY_ID_ENV: issued.access_key_id,
        ACCESS_KEY_SECRET_ENV: issued.access_key_secret,
        SECURITY_TOKEN_ENV: issued.security_token,
    }
    settings = identity_settings(dev_emulator, "env", environ)
    identity = await resolve_identity(settings, session)
    assert (await chain_once(settings, session, identity)).startswith("STS.")
    # A temporary key cannot sign presigned URLs for ever: sign_with_access_key is refused.
    scope = dataclasses.replace(settings.scopes["saves"], sign_with_access_key=True)
    with pytest.raises(ConfigError) as caught:
        own_access_key(dataclasses.replace(settings, scopes={"saves": scope}), identity)
    assert caught.value.key == "scopes.saves.sign_with_access_key"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"sub": "system:serviceaccount:other:app"}, "AuthenticationFail.NoPermission"),
        ({"aud": "someone-else"}, "AuthenticationFail.OIDCToken.AudienceNotMatch"),
    ],
)
async def test_oidc_tokens_the_role_does_not_trust_yield_nothing(
    dev_emulator: Emulator,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    claims: dict[str, str],
    code: str,
) -> None:
    settings = identity_settings(
        dev_emulator, "oidc", oidc_environ(dev_emulator, tmp_path, **claims)
    )
    with pytest.raises(ConfigError) as caught:
        await resolve_identity(settings, session)
    assert code in caught.value.problem


@pytest.mark.asyncio
async def test_temporary_identity_is_refreshed_before_it_expires(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    start = time.time()
    offset = [0.0]

    def emulator_clock() -> float:
        return start + offset[0]

    def clock() -> datetime:
        return datetime.fromtimestamp(emulator_clock(), UTC)

    config = EmulatorConfig(data_dir=tmp_path, identity_credentials_seconds=3600)
    async with running_emulator(config, clock=emulator_clock) as emu:
        settings = identity_settings(
            emu, "credentials_uri", {CREDENTIALS_URI_ENV: emu.credentials_uri}
        )
        identity = RefreshingIdentity(identity_source(settings, session, clock), clock)
        first = await identity.start()
        sts = AliyunStsClient(session, settings.sts, identity, clock=clock)
        deadline = asyncio.get_running_loop().time() + 10

        offset[0] = 2600  # 1000 s left: not yet due (15 min ahead)
        await sts.assume_role(REQUEST, deadline=deadline)
        assert (await identity.current()) is first

        offset[0] = 2701  # 899 s left: due
        await sts.assume_role(REQUEST, deadline=deadline)
        second = await identity.current()
        assert second.access_key_id != first.access_key_id
        assert identity.refreshes == 2

        offset[0] = 3601  # the first credentials have expired; the refreshed ones sign
        await sts.assume_role(REQUEST, deadline=deadline)
        assert (await identity.current()) is second


@pytest.mark.asyncio
async def test_logs_name_the_source_and_never_a_secret(
    dev_emulator: Emulator,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    environ = oidc_environ(dev_emulator, tmp_path)
    token = await asyncio.to_thread(Path(environ[OIDC_TOKEN_FILE_ENV]).read_text)
    settings = identity_settings(dev_emulator, "default", environ)
    with caplog.at_level(logging.DEBUG):
        identity = await resolve_identity(settings, session)
        await chain_once(settings, session, identity)
    current = await identity.current()
    assert "identity: using credentials from oidc" in caplog.text
    for secret in (token, current.access_key_secret, current.security_token):
        assert secret not in caplog.text


@pytest.mark.parametrize("source", ["default", "oidc", "env", "credentials_uri"])
def test_serve_refuses_to_start_when_no_source_yields(
    source: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in (ACCESS_KEY_ID_ENV, ACCESS_KEY_SECRET_ENV, ROLE_ARN_ENV, CREDENTIALS_URI_ENV):
        monkeypatch.delenv(name, raising=False)
    scope = "\n".join(f'{key} = "{value}"' for key, value in SCOPE.items())
    config = tmp_path / "satchel.toml"
    config.write_text(
        f'[identity]\nsource = "{source}"\n'
        '[sts]\nendpoint = "http://127.0.0.1:9"\n'
        f"[scopes.saves]\n{scope}\n"
    )
    assert cli.main(["serve", "--config", str(config)]) == cli.EXIT_BAD_CONFIG
    error = capsys.readouterr().err
    assert f"'identity.source': {source}: " in error
    assert "Satchel needs its own credentials to call STS" in error


SECRET = "very-secret-value-0123456789"
FULL = {
    "Code": "Success",
    "AccessKeyId": "STS.x",
    "AccessKeySecret": SECRET,
    "SecurityToken": SECRET + "-token",
    "Expiration": "2099-01-01T00:00:00Z",
}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, {k: v for k, v in FULL.items() if k != "Expiration"}),
        (200, {**FULL, "Code": "Failure"}),
        (200, {**FULL, "Expiration": "tomorrow"}),
        (200, {**FULL, "SecurityToken": ""}),
        (200, [FULL]),
        (200, "not json " + SECRET),
        (500, FULL),
        (302, FULL),
    ],
)
async def test_a_malformed_credentials_answer_is_refused_without_echoing_it(
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: object,
) -> None:
    async def answer(request: web.Request) -> web.Response:
        text = body if isinstance(body, str) else json.dumps(body)
        return web.Response(status=status, text=text, headers={"Location": "http://127.0.0.1:9"})

    app = web.Application()
    app.router.add_get("/credentials", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        environ = {CREDENTIALS_URI_ENV: f"http://{host}:{port}/credentials"}
        settings = settings_from_mapping({"identity": {"source": "credentials_uri"}}, environ)
        with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as caught:
            await resolve_identity(settings, session)
    finally:
        await runner.cleanup()
    assert "credentials URI" in caught.value.problem
    assert SECRET not in str(caught.value)
    assert SECRET not in caplog.text
