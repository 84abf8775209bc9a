"""Helpers for the identity tests: the emulator with the dev account, tokens, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

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
