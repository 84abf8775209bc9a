"""A folder's objects and sizes, from OSS ListObjectsV2, signed by the signing core.

Implements presigning.quota.FolderLister. Each page is signed afresh (V4 or V1, as the
scope presigns) with the scope's presigning credentials and sent exactly as signed: no
redirects, a bounded answer, a timeout. Anything but a well-formed listing is
UsageUnavailable, so the upload that needed it is refused rather than waved through.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import unquote

import aiohttp
from yarl import URL

from satchel_server.errors import UsageUnavailable
from satchel_server.presigning.quota import FolderListing, FolderQuery
from satchel_server.signing import OssRequest, sign_header_v1, sign_header_v4
from satchel_server.signing.encoding import pct
from satchel_server.storage.error_body import oss_error

PAGE_SIZE = 1000  # ListObjectsV2's most keys per page
# A page of 1000 keys of up to 1023 bytes, url-encoded, with their metadata.
MAX_PAGE_BYTES = 8 * 1024 * 1024
REQUEST_TIMEOUT_SECONDS = 5.0
RETRY_AFTER_SECONDS = 1.0
_NS = "{http://doc.oss-cn-hangzhou.aliyuncs.com}"


def _now() -> datetime:
    return datetime.now(UTC)


class OssFolderLister:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        clock: Callable[[], datetime] = _now,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._session = session
        self._clock = clock
        self._page_size = page_size

    async def list_folder(self, query: FolderQuery) -> FolderListing:
        sizes: dict[str, int] = {}
        token = ""
        while True:
            page, token = await self._page(query, token)
            sizes.update(page)
            if len(sizes) > query.max_objects:
                return FolderListing(sizes, complete=False)
            if not token:
                return FolderListing(sizes)

    def _signed(self, query: FolderQuery, token: str) -> tuple[URL, dict[str, str]]:
        params = {
            "list-type": "2",
            "prefix": query.prefix,
            "max-keys": str(self._page_size),
            "encoding-type": "url",
        }
        if token:
            params["continuation-token"] = token
        request = OssRequest(
            method="GET",
            bucket=query.bucket,
            key=None,
            credentials=query.credentials,
            now=self._clock(),
            query=params,
            region=query.region,
            endpoint=query.endpoint,
        )
        sign = sign_header_v4 if query.signature == "v4" else sign_header_v1
        headers = dict(sign(request).headers)
        encoded = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(params.items()))
        url = URL(f"{query.endpoint.url(query.bucket, None)}?{encoded}", encoded=True)
        return url, headers

    async def _page(self, query: FolderQuery, token: str) -> tuple[dict[str, int], str]:
        url, headers = self._signed(query, token)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
        try:
            async with self._session.get(
                url, headers=headers, allow_redirects=False, timeout=timeout
            ) as response:
                raw = await response.content.read(MAX_PAGE_BYTES + 1)
                status = response.status
        except TimeoutError:
            raise _unavailable("OSS did not answer the folder usage lookup in time") from None
        except aiohttp.ClientError as exc:
            raise _unavailable(
                f"cannot reach OSS for the folder usage lookup: {type(exc).__name__}"
            ) from None
        if status != 200:
            raise _unavailable(
                f"OSS answered the folder usage lookup with HTTP {status} {oss_error(raw)[0]}"
            )
        if len(raw) > MAX_PAGE_BYTES:
            raise _unavailable("OSS answered the folder usage lookup with an oversized page")
        try:
            return _parse_page(raw)
        except (ET.ParseError, ValueError):
            raise _unavailable("OSS answered the folder usage lookup with a bad page") from None


def _unavailable(reason: str) -> UsageUnavailable:
    return UsageUnavailable(f"{reason}; uploads to this folder wait for it", RETRY_AFTER_SECONDS)


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return element.findall(name) or element.findall(_NS + name)


def _text(element: ET.Element, name: str) -> str:
    found = _children(element, name)
    return (found[0].text or "") if found else ""


def _parse_page(raw: bytes) -> tuple[dict[str, int], str]:
    """Sizes by key, and the continuation token ('' on the last page)."""
    # The answer comes from OSS over a verified connection; expat refuses external
    # entities, and the size is bounded above.
    root = ET.fromstring(raw)  # noqa: S314
    if root.tag.removeprefix(_NS) != "ListBucketResult":
        raise ValueError("not a ListBucketResult")
    sizes = {}
    for item in _children(root, "Contents"):
        size = int(_text(item, "Size"))
        if size < 0:
            raise ValueError("a negative size")
        sizes[unquote(_text(item, "Key"))] = size
    truncated = _text(root, "IsTruncated") == "true"
    token = _text(root, "NextContinuationToken") if truncated else ""
    if truncated and not token:
        raise ValueError("truncated without a continuation token")
    return sizes, token
