"""The credential chain's sources that call out, on Satchel's aiohttp session.

- OIDC (RRSA): AssumeRoleWithOIDC with the token file's current token (the cluster rotates it,
  so it is read afresh on every fetch). The call is anonymous: the token is the proof.
- ECS RAM role: the metadata service, IMDSv2 first (a session token from PUT
  /latest/api/token); without one, only when IMDSv1 is not disabled.
- Credentials URI: a GET answering `{"Code": "Success", "AccessKeyId", ...}`.

Errors say what failed (HTTP status, STS error code), never a body that may hold a secret.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from satchel_server.config import (
    CREDENTIALS_URI_ENV,
    ECS_METADATA_DISABLED_ENV,
    OIDC_PROVIDER_ARN_ENV,
    OIDC_TOKEN_FILE_ENV,
    ROLE_ARN_ENV,
    Settings,
)
from satchel_server.credentials.identity import (
    CredentialChain,
    Identity,
    IdentityError,
    IdentitySource,
    StaticSource,
)
from satchel_server.credentials.types import Clock, parse_sts_expiration, utc_now
from satchel_server.signing.timefmt import iso_extended
from satchel_server.sts.client import MAX_RESPONSE_BYTES, STS_VERSION

METADATA_TOKEN_PATH = "/latest/api/token"  # noqa: S105 - a path
METADATA_CREDENTIALS_PATH = "/latest/meta-data/ram/security-credentials/"
METADATA_TOKEN_TTL_SECONDS = 21600
# An instance reaches its metadata service at once; elsewhere nothing answers.
METADATA_CONNECT_TIMEOUT_SECONDS = 1.0


def _session_name(configured: str) -> str:
    return configured or f"satchel-{int(time.time())}"


async def _call(
    session: aiohttp.ClientSession,
    method: str,
    url: URL,
    limits: aiohttp.ClientTimeout,
    what: str,
    **kwargs: Any,
) -> tuple[int, bytes]:
    try:
        async with session.request(
            method, url, timeout=limits, allow_redirects=False, **kwargs
        ) as response:
            return response.status, await response.content.read(MAX_RESPONSE_BYTES)
    except TimeoutError:
        raise IdentityError(f"{what} did not answer in time") from None
    except aiohttp.ClientError as exc:
        raise IdentityError(f"cannot reach {what}: {type(exc).__name__}") from None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _text(document: Mapping[str, Any], name: str, what: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise IdentityError(f"{what} answered without {name}")
    return value


def _identity(document: Any, what: str) -> Identity:
    if not isinstance(document, dict):
        raise IdentityError(f"{what} answered something other than a JSON object")
    try:
        expiration = parse_sts_expiration(_text(document, "Expiration", what))
    except ValueError:
        raise IdentityError(
            f"{what} answered an Expiration that is not YYYY-MM-DDTHH:MM:SSZ"
        ) from None
    return Identity(
        access_key_id=_text(document, "AccessKeyId", what),
        access_key_secret=_text(document, "AccessKeySecret", what),
        security_token=_text(document, "SecurityToken", what),
        expiration=expiration,
    )


def _success_document(status: int, raw: bytes, what: str) -> Identity:
    """The metadata service's and a credentials URI's answer: `Code: Success` and the keys."""
    document = _json(raw)
    if status != 200:
        raise IdentityError(f"{what} answered HTTP {status}")
    if not isinstance(document, dict) or document.get("Code") != "Success":
        raise IdentityError(f"{what} did not answer Code Success")
    return _identity(document, what)


class OidcSource:
    name = "oidc"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        sts_endpoint: str,
        settings: Settings,
        clock: Clock = utc_now,
    ) -> None:
        env = settings.identity_env
        self._session = session
        self._endpoint = URL(sts_endpoint)
        self._role_arn = env.role_arn
        self._provider_arn = env.oidc_provider_arn
        self._token_file = env.oidc_token_file
        self._session_name = _session_name(env.role_session_name)
        self._duration = settings.identity.oidc_duration_seconds
        self._timeout = aiohttp.ClientTimeout(total=settings.identity.timeout_seconds)
        self._clock = clock

    async def fetch(self) -> Identity:
        missing = [
            name
            for name, value in (
                (ROLE_ARN_ENV, self._role_arn),
                (OIDC_PROVIDER_ARN_ENV, self._provider_arn),
                (OIDC_TOKEN_FILE_ENV, self._token_file),
            )
            if not value
        ]
        if missing:
            raise IdentityError(f"{', '.join(missing)} not set")
        try:
            token = (await asyncio.to_thread(Path(self._token_file).read_text, "utf-8")).strip()
        except OSError as exc:
            raise IdentityError(f"cannot read {OIDC_TOKEN_FILE_ENV}: {exc.strerror}") from None
        form = {
            "Action": "AssumeRoleWithOIDC",
            "Format": "JSON",
            "Version": STS_VERSION,
            "Timestamp": iso_extended(self._clock()),
            "RoleArn": self._role_arn,
            "OIDCProviderArn": self._provider_arn,
            "OIDCToken": token,
            "RoleSessionName": self._session_name,
            "DurationSeconds": str(self._duration),
        }
        what = "STS AssumeRoleWithOIDC"
        url = URL(str(self._endpoint).rstrip("/") + "/")
        status, raw = await _call(self._session, "POST", url, self._timeout, what, data=form)
        document = _json(raw)
        if status != 200:
            code = document.get("Code", "") if isinstance(document, dict) else ""
            message = document.get("Message", "") if isinstance(document, dict) else ""
            raise IdentityError(f"{what} answered HTTP {status} {code}: {message}".rstrip(": "))
        block = document.get("Credentials") if isinstance(document, dict) else None
        return _identity(block, what)


class EcsRamRoleSource:
    name = "ecs_ram_role"

    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        env = settings.identity_env
        self._session = session
        self._endpoint = settings.identity.metadata_endpoint.rstrip("/")
        self._role_name = env.ecs_role_name
        self._disabled = env.ecs_metadata_disabled
        self._imdsv1_disabled = env.imdsv1_disabled
        self._timeout = aiohttp.ClientTimeout(
            total=settings.identity.timeout_seconds, sock_connect=METADATA_CONNECT_TIMEOUT_SECONDS
        )

    async def _token(self) -> str | None:
        what = "the ECS metadata service (token)"
        ttl = {"X-aliyun-ecs-metadata-token-ttl-seconds": str(METADATA_TOKEN_TTL_SECONDS)}
        try:
            status, raw = await _call(
                self._session,
                "PUT",
                self._url(METADATA_TOKEN_PATH),
                self._timeout,
                what,
                headers=ttl,
            )
        except IdentityError:
            if self._imdsv1_disabled:
                raise
            return None  # IMDSv1: the requests go without a token
        if status == 200 and raw.strip():
            return raw.decode("ascii", "replace").strip()
        if self._imdsv1_disabled:
            raise IdentityError(f"{what} answered HTTP {status}")
        return None

    def _url(self, path: str) -> URL:
        return URL(self._endpoint + path)

    async def fetch(self) -> Identity:
        if self._disabled:
            raise IdentityError(f"disabled by {ECS_METADATA_DISABLED_ENV}")
        token = await self._token()
        headers = {"X-aliyun-ecs-metadata-token": token} if token else {}
        what = "the ECS metadata service"
        role = self._role_name
        if not role:
            status, raw = await _call(
                self._session,
                "GET",
                self._url(METADATA_CREDENTIALS_PATH),
                self._timeout,
                what,
                headers=headers,
            )
            role = raw.decode("utf-8", "replace").strip() if status == 200 else ""
            if not role or "/" in role:
                raise IdentityError(
                    f"{what} names no RAM role (HTTP {status}): is one attached to the instance?"
                )
        status, raw = await _call(
            self._session,
            "GET",
            self._url(METADATA_CREDENTIALS_PATH + role),
            self._timeout,
            what,
            headers=headers,
        )
        return _success_document(status, raw, f"{what} (role {role})")


class CredentialsUriSource:
    name = "credentials_uri"

    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        self._session = session
        self._uri = settings.identity_env.credentials_uri
        self._timeout = aiohttp.ClientTimeout(total=settings.identity.timeout_seconds)

    async def fetch(self) -> Identity:
        if not self._uri:
            raise IdentityError(f"{CREDENTIALS_URI_ENV} not set")
        what = "the credentials URI"
        status, raw = await _call(self._session, "GET", URL(self._uri), self._timeout, what)
        return _success_document(status, raw, what)


def identity_source(
    settings: Settings, session: aiohttp.ClientSession, clock: Clock = utc_now
) -> IdentitySource:
    """The source `[identity] source` names, or the whole chain for `default`."""
    key = settings.access_key
    env = StaticSource(
        Identity(key.access_key_id, key.access_key_secret, key.security_token)
        if key is not None
        else None
    )
    sources: dict[str, IdentitySource] = {
        "env": env,
        "oidc": OidcSource(session, settings.sts.endpoint, settings, clock),
        "ecs_ram_role": EcsRamRoleSource(session, settings),
        "credentials_uri": CredentialsUriSource(session, settings),
    }
    if settings.identity.source == "default":
        return CredentialChain(list(sources.values()))
    return sources[settings.identity.source]
