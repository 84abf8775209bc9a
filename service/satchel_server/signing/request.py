"""The one context object every OSS signer takes, and the values signers return.

In the spirit of alibabacloud-oss-v2's ``SigningContext``: everything a signature depends
on arrives in one frozen value (method, bucket, key, query, headers, credentials, time,
region, expiry), validated once on construction, so the signers themselves stay small.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from .encoding import check_object_key, pct_path
from .errors import SigningError
from .keys import SigningCredentials
from .timefmt import utc


class _NoItems(Mapping[str, str]):
    """An immutable, hashable empty mapping: a plain default (no factory call per request)."""

    def __getitem__(self, key: str) -> str:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "{}"


EMPTY: Mapping[str, str] = _NoItems()
# OSS bucket naming rules; they also mean a bucket never needs percent-encoding.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def check_method(method: str) -> None:
    """Raise :class:`SigningError` unless ``method`` is an upper-case HTTP method."""
    if not method or not method.isupper():
        raise SigningError("method", "must be an upper-case HTTP method")


def v4_region(region: str | None) -> str:
    """``region``, which OSS V4 signatures need."""
    if not region:
        raise SigningError("region", "is required for OSS V4 signatures")
    return region


def url_endpoint(endpoint: OssEndpoint | None) -> OssEndpoint:
    """``endpoint``, which building a URL needs."""
    if endpoint is None:
        raise SigningError("endpoint", "is required to build a URL")
    return endpoint


def check_bucket(bucket: str) -> None:
    """Raise :class:`SigningError` unless ``bucket`` follows the OSS naming rules."""
    if not BUCKET_NAME.fullmatch(bucket):
        raise SigningError(
            "bucket", "must be 3-63 of a-z, 0-9 and '-', starting and ending with a letter or digit"
        )


@dataclass(frozen=True)
class OssEndpoint:
    """Where URLs point: ``host`` without scheme, e.g. ``oss-cn-hangzhou.aliyuncs.com``.

    Virtual-hosted style (``bucket.host/key``) unless ``path_style`` (``host/bucket/key``,
    what an emulator on ``127.0.0.1:port`` needs). Signatures do not depend on the style:
    both OSS V1 and V4 sign ``/bucket/key``.
    """

    host: str
    scheme: str = "https"
    path_style: bool = False

    def __post_init__(self) -> None:
        if not self.host or "/" in self.host:
            raise SigningError("endpoint.host", "must be a host[:port] without scheme or path")
        if self.scheme not in ("http", "https"):
            raise SigningError("endpoint.scheme", "must be http or https")

    def url(self, bucket: str | None, key: str | None) -> str:
        """The URL of ``bucket/key``; the key is percent-encoded, ``/`` kept."""
        return self.url_encoded(bucket, pct_path(key) if key else "")

    def url_encoded(self, bucket: str | None, path: str) -> str:
        """As :meth:`url`, for a key already encoded with ``pct_path``."""
        if bucket is None:
            return f"{self.scheme}://{self.host}/{path}"
        if self.path_style:
            return f"{self.scheme}://{self.host}/{bucket}/{path}"
        return f"{self.scheme}://{bucket}.{self.host}/{path}"


@dataclass(frozen=True, slots=True)
class OssRequest:
    """One OSS request to sign (header) or presign (query).

    ``query`` holds *decoded* parameters (``""`` for a flag such as ``uploads``); the
    signers encode them. ``headers`` are the headers the request will carry (any case).
    ``expires`` (seconds, 1..604800) is used by presigning only. ``region`` is required
    for V4. ``key`` may be ``str`` or UTF-8 ``bytes``; it is signed exactly as given.
    """

    method: str
    bucket: str | None
    key: str | None
    credentials: SigningCredentials
    now: datetime
    query: Mapping[str, str] = EMPTY
    headers: Mapping[str, str] = EMPTY
    region: str | None = None
    expires: int = 900
    endpoint: OssEndpoint | None = None
    additional_headers: tuple[str, ...] = ()
    product: str = "oss"

    def __post_init__(self) -> None:
        check_method(self.method)
        if self.bucket is not None:
            check_bucket(self.bucket)
        # object.__setattr__ only when normalising: this runs once per presign.
        key = check_object_key(self.key, required=False)
        if key is not self.key:
            object.__setattr__(self, "key", key)
        if self.now.tzinfo is not UTC:
            object.__setattr__(self, "now", utc(self.now))

    def object_key(self) -> str:
        """The key, which must be present (an object URL, an object upload)."""
        if not self.key:
            raise SigningError("key", "must not be empty for an object request")
        return self.key

    def v4_region(self) -> str:
        return v4_region(self.region)

    def url_encoded(self, path: str) -> str:
        """The URL (ending in ``?``) for a key already encoded with ``pct_path``."""
        return url_endpoint(self.endpoint).url_encoded(self.bucket, path) + "?"

    def lower_headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}


def signed_by_default(lower_name: str) -> bool:
    """Headers every OSS signature covers: ``x-oss-*``, ``content-type``, ``content-md5``.

    (V1 puts the latter two in fixed StringToSign lines; V4 lists them with the others.)
    """
    return lower_name.startswith("x-oss-") or lower_name in ("content-type", "content-md5")


class SignedHeaders(NamedTuple):
    """Header signing output: the headers to add (Authorization included)."""

    headers: Mapping[str, str]
    string_to_sign: str
    canonical_request: str | None = None  # V4 only

    def __repr__(self) -> str:
        # The values carry the signature and the security token: names only.
        return f"SignedHeaders(headers={sorted(self.headers)})"


class PresignedUrl(NamedTuple):
    """Query signing output. ``signed_headers`` must be sent exactly as signed.

    A NamedTuple rather than a frozen dataclass: as immutable, and cheaper to build on
    the presign hot path.
    """

    url: str
    method: str
    expires_at: int  # epoch seconds
    signed_headers: Mapping[str, str]
    string_to_sign: str

    def __repr__(self) -> str:
        # The URL's query carries the signature and the security token.
        return f"PresignedUrl(method={self.method!r}, expires_at={self.expires_at})"
