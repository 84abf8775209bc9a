"""Satchel's own identity, resolved as `satchel serve` resolves it: the credential chain."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import ClientSession

from satchel_server.config import AccessKey, Settings
from satchel_server.credentials.identity import RefreshingIdentity
from satchel_server.credentials.types import Clock
from satchel_server.doctor.report import CheckResult, failed, passed
from satchel_server.errors import ConfigError
from satchel_server.wiring import own_access_key, resolve_identity

NAME = "credentials"


@dataclass(frozen=True)
class Resolved:
    identity: RefreshingIdentity
    # A RAM user's long-lived key, for scopes that sign with it; else None.
    access_key: AccessKey | None


async def resolve(
    settings: Settings, session: ClientSession, clock: Clock
) -> tuple[Resolved | None, CheckResult]:
    """The identity and the line that says which source yielded it (or why none did)."""
    try:
        identity = await resolve_identity(settings, session, clock)
        access_key = own_access_key(settings, identity)
    except ConfigError as exc:
        return None, failed(
            NAME,
            str(exc),
            "give Satchel an identity: [identity] source and its ALIBABA_CLOUD_* variables "
            "(docs/operations.md, Identity)",
        )
    current = await identity.current()
    until = "" if current.expiration is None else f", valid until {current.expiration:%H:%M:%SZ}"
    detail = f"from {identity.source_name}, AccessKeyId {current.access_key_id}{until}"
    return Resolved(identity, access_key), passed(NAME, detail)
