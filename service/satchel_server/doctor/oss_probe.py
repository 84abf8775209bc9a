"""The doctor's own OSS calls: header-signed as players' SDKs sign them, never retried.

An answer is reduced to what a check needs: the HTTP status, OSS's error code and the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
from yarl import URL

from satchel_server.config import ScopeSettings
from satchel_server.credentials.types import Clock
from satchel_server.presigning.presigner import endpoint_of
from satchel_server.signing import (
    OssRequest,
    SigningCredentials,
    SigningError,
    sign_header_v1,
    sign_header_v4,
)
from satchel_server.storage.error_body import oss_error

ANSWER_BYTES = 64 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True)
class OssAnswer:
    status: int
    code: str  # OSS's error code; "" for a success
    message: str = ""
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def describe(self) -> str:
        return f"HTTP {self.status} {self.code}".rstrip() + (
            f" ({self.message})" if self.message else ""
        )


class OssProbe:
    """Signed calls to one scope's bucket through the endpoint players get."""

    def __init__(self, session: aiohttp.ClientSession, scope: ScopeSettings, clock: Clock):
        self._session = session
        self._scope = scope
        self._endpoint = endpoint_of(scope)
        self._clock = clock

    async def call(
        self,
        method: str,
        key: str | None,
        credentials: SigningCredentials,
        *,
        query: Mapping[str, str] | None = None,
        body: bytes = b"",
        signature: str = "v4",
    ) -> OssAnswer:
        """One request; `signature` v1 does not depend on the region (for region checks)."""
        query = dict(query or {})
        headers = {"Content-Type": "text/plain"} if body else {}
        request = OssRequest(
            method=method,
            bucket=self._scope.bucket,
            key=key,
            credentials=credentials,
            now=self._clock(),
            query=query,
            headers=headers,
            region=self._scope.region,
            endpoint=self._endpoint,
        )
        try:
            signed = sign_header_v4(request) if signature == "v4" else sign_header_v1(request)
        except SigningError as exc:
            return OssAnswer(0, "SigningError", str(exc))
        url = self._endpoint.url(self._scope.bucket, key)
        if query:
            url += "?" + "&".join(
                quote(name, safe="") + (f"={quote(value, safe='')}" if value else "")
                for name, value in query.items()
            )
        return await self._send(method, url, {**headers, **signed.headers}, body)

    async def fetch(self, url: str, headers: Mapping[str, str]) -> OssAnswer:
        """A presigned URL, fetched as a player's app would."""
        return await self._send("GET", url, headers, b"")

    async def _send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> OssAnswer:
        # Sent exactly as signed: no added Content-Type, no redirect followed.
        try:
            async with self._session.request(
                method,
                URL(url, encoded=True),
                data=body,
                headers=dict(headers),
                skip_auto_headers=("Content-Type",),
                allow_redirects=False,
                timeout=TIMEOUT,
            ) as response:
                raw = await response.content.read(ANSWER_BYTES)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return OssAnswer(0, "Unreachable", type(exc).__name__)
        if 200 <= status < 300:
            return OssAnswer(status, "", body=raw)
        code, message = oss_error(raw)
        return OssAnswer(status, code, message, raw)
