"""Each source of Satchel's identity, served by the emulator, read by the official library.

`alibabacloud-credentials` is the referee: its providers, pointed at the emulator, must get
credentials that STS then accepts (their SecurityToken verified) for role chaining. Two of its
knobs are not public, and the tests say so where they set them: the ECS provider's metadata
host is fixed to 100.100.100.200, and the library reads its environment once, at import.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from alibabacloud_credentials.provider import (
    EcsRamRoleCredentialsProvider,
    OIDCRoleArnCredentialsProvider,
    URLCredentialsProvider,
)
from alibabacloud_credentials.utils import auth_util
from aliyunsdkcore.acs_exception.exceptions import ServerException
from component.identity_fixtures import assume_role_with, dev_emulator, oidc_token
from support.tls_certs import make_pki

from satchel_server.emulator import accounts as acc
from satchel_server.emulator.runner import Emulator, running_emulator
from satchel_server.emulator.state import EmulatorConfig

__all__ = ["dev_emulator"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("subject", "refusal"),
    [(acc.DEV_OIDC_SUBJECT, None), ("system:serviceaccount:x:other", "NoPermission")],
)
async def test_oidc_provider_of_the_library_assumes_the_role_the_token_is_trusted_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, subject: str, refusal: str | None
) -> None:
    # The library always calls STS over HTTPS (certifi plus the default verify paths):
    # the emulator's STS serves TLS, its CA named by SSL_CERT_FILE.
    files = make_pki().write(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(files["ca_cert"]))
    config = EmulatorConfig(
        data_dir=tmp_path / "data", sts_tls=(files["server_cert"], files["server_key"])
    )
    async with running_emulator(config) as emu:
        token_file = tmp_path / "token"
        token_file.write_text(oidc_token(emu, time.time(), sub=subject))
        provider = OIDCRoleArnCredentialsProvider(
            role_arn=acc.DEV_IDENTITY_ROLE_ARN,
            oidc_provider_arn=acc.DEV_OIDC_PROVIDER_ARN,
            oidc_token_file_path=str(token_file),
            role_session_name="satchel-pod",
            sts_endpoint=emu.sts_url.removeprefix("https://"),
        )
        if refusal is not None:
            with pytest.raises(Exception, match=rf"AuthenticationFail\.{refusal}"):
                await provider.get_credentials_async()
            return
        credentials = await provider.get_credentials_async()
        assert credentials.get_security_token()
        session = emu.directory.session_by_key(credentials.get_access_key_id())
        assert session is not None
        assert session.role.name == acc.DEV_IDENTITY_ROLE


@pytest.mark.asyncio
async def test_ecs_provider_of_the_library_uses_imdsv2_and_its_credentials_chain(
    dev_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read at import time by the library; the suite disables the metadata service for safety.
    monkeypatch.setattr(auth_util, "environment_ecs_metadata_disabled", "false")
    provider = EcsRamRoleCredentialsProvider(async_update_enabled=False, disable_imds_v1=True)
    # The library has no public knob for the metadata host (100.100.100.200 in the cloud).
    provider._EcsRamRoleCredentialsProvider__metadata_service_host = (  # type: ignore[attr-defined]
        dev_emulator.metadata_url.removeprefix("http://")
    )
    credentials = await provider.get_credentials_async()
    assert credentials.get_provider_name() == "ecs_ram_role"
    answer = await _chain(dev_emulator, credentials)
    assert str(answer["Credentials"]["AccessKeyId"]).startswith("STS.")  # type: ignore[index]


@pytest.mark.asyncio
async def test_url_provider_of_the_library_reads_the_credentials_uri(
    dev_emulator: Emulator,
) -> None:
    provider = URLCredentialsProvider(uri=dev_emulator.credentials_uri)
    credentials = await provider.get_credentials_async()
    assert credentials.get_provider_name() == "credential_uri"
    assert credentials.get_expiration() > time.time() + 3600
    answer = await _chain(dev_emulator, credentials)
    assert str(answer["Credentials"]["AccessKeyId"]).startswith("STS.")  # type: ignore[index]


@pytest.mark.asyncio
async def test_assume_role_with_a_wrong_or_expired_security_token_is_refused(
    tmp_path: Path,
) -> None:
    now = [time.time()]
    # Short-lived, so the emulator's clock passes their expiry within the 15 min of skew
    # STS allows the SDK's timestamp.
    config = EmulatorConfig(data_dir=tmp_path, identity_credentials_seconds=600)
    async with running_emulator(config, clock=lambda: now[0]) as emu:
        credentials = await URLCredentialsProvider(uri=emu.credentials_uri).get_credentials_async()
        key_id, secret = credentials.get_access_key_id(), credentials.get_access_key_secret()
        token = credentials.get_security_token()
        with pytest.raises(ServerException) as caught:
            await assume_role_with(emu, key_id, secret, token[:-4] + "AAAA")
        assert caught.value.get_error_code() == "InvalidSecurityToken.Malformed"
        now[0] += 601
        with pytest.raises(ServerException) as caught:
            await assume_role_with(emu, key_id, secret, token)
        assert caught.value.get_error_code() == "InvalidSecurityToken.Expired"


async def _chain(emu: Emulator, credentials: object) -> dict[str, object]:
    return await assume_role_with(
        emu,
        credentials.get_access_key_id(),  # type: ignore[attr-defined]
        credentials.get_access_key_secret(),  # type: ignore[attr-defined]
        credentials.get_security_token(),  # type: ignore[attr-defined]
    )
