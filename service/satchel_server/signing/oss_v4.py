"""OSS signature V4 (``OSS4-HMAC-SHA256``), in botocore's steps.

``canonical_request`` -> ``string_to_sign`` -> ``signature``::

    CanonicalRequest = METHOD \\n pct_path("/bucket/key") \\n CanonicalQuery \\n
                       CanonicalHeaders \\n AdditionalHeaders \\n UNSIGNED-PAYLOAD
    StringToSign     = "OSS4-HMAC-SHA256" \\n x-oss-date \\n scope \\n hex(sha256(CR))
    scope            = YYYYMMDD/region/oss/aliyun_v4_request

Every query parameter is signed (encoded key and value, sorted by encoded key); the
signed headers are ``x-oss-*``, ``content-type``, ``content-md5`` and the
*additional headers* named by the caller. The derived key comes from a
:class:`~.keys.V4KeyCache` (per access key, day, region), so a warm presign is one SHA-256
and one HMAC-SHA256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .encoding import check_object_key, pct, pct_path, sorted_pairs
from .errors import SigningError
from .keys import SigningCredentials, V4Key, V4KeyCache, v4_cache
from .request import (
    OssEndpoint,
    OssRequest,
    PresignedUrl,
    SignedHeaders,
    check_bucket,
    check_method,
    signed_by_default,
    url_endpoint,
    v4_region,
)
from .timefmt import MAX_EXPIRES, check_expires, epoch_and_stamp, iso_basic, utc

ALGORITHM = "OSS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_URL_PARAMS = frozenset(
    (
        "x-oss-signature-version",
        "x-oss-credential",
        "x-oss-date",
        "x-oss-expires",
        "x-oss-additional-headers",
        "x-oss-security-token",
        "x-oss-signature",
    )
)


def canonical_uri(bucket: str | None, key: str | None) -> str:
    return pct_path(f"/{bucket}/{key or ''}") if bucket else "/"


def additional_headers(lower_headers: Mapping[str, str], names: Iterable[str]) -> list[str]:
    """The additional headers that count: lower-cased, present, non-empty, not default."""
    picked = {n.lower() for n in names}
    return sorted(n for n in picked if not signed_by_default(n) and lower_headers.get(n))


def canonical_headers(lower_headers: Mapping[str, str], additional: Sequence[str]) -> str:
    return "".join(
        f"{k}:{v}\n"
        for k, v in sorted(lower_headers.items())
        if signed_by_default(k) or k in additional
    )


def canonical_request(
    method: str,
    uri: str,
    encoded_query: Iterable[tuple[str, str]],
    lower_headers: Mapping[str, str],
    additional: Sequence[str],
) -> str:
    """``encoded_query``: (pct(key), pct(value)) pairs, ``x-oss-signature`` excluded."""
    payload = lower_headers.get("x-oss-content-sha256", UNSIGNED_PAYLOAD)
    return (
        f"{method}\n{uri}\n{sorted_pairs(encoded_query, flags=True)}\n"
        f"{canonical_headers(lower_headers, additional)}\n{';'.join(additional)}\n{payload}"
    )


def string_to_sign(timestamp: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


def signature(key: V4Key, to_sign: str) -> str:
    return key.mac.hexdigest(to_sign.encode("utf-8"))


def signing_key(req: OssRequest, day: str, cache: V4KeyCache | None = None) -> V4Key:
    return v4_cache(cache).get(req.credentials, day, req.v4_region(), req.product)


def sign_header(req: OssRequest, cache: V4KeyCache | None = None) -> SignedHeaders:
    """Headers to add: ``x-oss-date``, ``x-oss-content-sha256``, the token, ``Authorization``.

    The Authorization layout is alibabacloud-oss-v2's
    (``Credential=..,AdditionalHeaders=..,Signature=..``); OSS accepts either order.
    """
    stamp = iso_basic(req.now)
    key = signing_key(req, stamp[:8], cache)
    added = {"x-oss-date": stamp, "x-oss-content-sha256": UNSIGNED_PAYLOAD}
    if req.credentials.security_token:
        added["x-oss-security-token"] = req.credentials.security_token
    lower = req.lower_headers()
    lower.update(added)
    extra = additional_headers(lower, req.additional_headers)
    query = [(pct(k), pct(v)) for k, v in req.query.items()]
    canonical = canonical_request(
        req.method, canonical_uri(req.bucket, req.key), query, lower, extra
    )
    to_sign = string_to_sign(stamp, key.scope, canonical)
    auth = f"{ALGORITHM} Credential={key.credential}"
    if extra:
        auth += f",AdditionalHeaders={';'.join(extra)}"
    added["authorization"] = f"{auth},Signature={signature(key, to_sign)}"
    return SignedHeaders(added, to_sign, canonical)


def presign(req: OssRequest, cache: V4KeyCache | None = None) -> PresignedUrl:
    """A V4 query-signed URL; parameter order as alibabacloud-oss-v2 writes it.

    This is the server's hot path: work that depends only on the credential (the encoded
    token), the day (the signing key) or the second (the timestamp) is memoised, and the
    request's optional parts cost nothing when absent.
    """
    if not (req.query or req.headers or req.additional_headers) and req.bucket:
        plain = _object_url(
            req.method,
            req.bucket,
            req.object_key(),
            region=req.v4_region(),
            endpoint=req.endpoint,
            product=req.product,
        )
        return presign_url(
            plain, credentials=req.credentials, now=req.now, expires=req.expires, cache=cache
        )
    path = pct_path(req.object_key())
    expires = req.expires
    if type(expires) is not int or not 1 <= expires <= MAX_EXPIRES:
        check_expires(expires)  # raises the SigningError
    epoch, stamp = epoch_and_stamp(req.now)
    key = v4_cache(cache).get(req.credentials, stamp[:8], req.v4_region(), req.product)
    uri = f"/{req.bucket}/{path}" if req.bucket else "/"  # bucket names need no encoding
    canonical, url_query, signed = _general_parts(req, uri, stamp, expires, key)
    to_sign = string_to_sign(stamp, key.scope, canonical)
    url = f"{req.url_encoded(path)}{url_query}&x-oss-signature={signature(key, to_sign)}"
    return PresignedUrl(url, req.method, epoch + expires, signed, to_sign)


@dataclass(frozen=True, slots=True)
class ObjectUrl:
    """A plain object URL (no parameters, no headers to sign), ready to presign again and again.

    Everything that depends only on the method, bucket, key, region and endpoint is
    worked out (and checked) once, by :func:`object_url`; what is left per URL is the
    time, the credential and the two hashes (:func:`presign_url`). A server keeps one per
    request it sees repeated. It holds no secret.
    """

    method: str
    region: str
    product: str
    canonical_head: str  # METHOD \n /bucket/encoded-key \n
    url_head: str  # scheme://host/encoded-key?x-oss-signature-version=..&x-oss-date=


def object_url(
    method: str, bucket: str, key: str, *, region: str, endpoint: OssEndpoint
) -> ObjectUrl:
    """The plain URL of ``key`` to presign, its arguments checked as an OssRequest would."""
    check_method(method)
    check_bucket(bucket)
    checked = check_object_key(key, required=True)
    assert checked is not None  # required=True raises instead
    return _object_url(
        method, bucket, checked, region=v4_region(region), endpoint=endpoint, product="oss"
    )


def _object_url(
    method: str,
    bucket: str,
    key: str,
    *,
    region: str,
    endpoint: OssEndpoint | None,
    product: str,
) -> ObjectUrl:
    host = url_endpoint(endpoint)
    path = pct_path(key)
    return ObjectUrl(
        method=method,
        region=region,
        product=product,
        canonical_head=f"{method}\n/{bucket}/{path}\n",
        url_head=(
            f"{host.url_encoded(bucket, path)}?x-oss-signature-version={ALGORITHM}&x-oss-date="
        ),
    )


def presign_url(
    url: ObjectUrl,
    *,
    credentials: SigningCredentials,
    now: datetime,
    expires: int,
    cache: V4KeyCache | None = None,
) -> PresignedUrl:
    """:func:`presign` of a plain object URL: the same bytes, as two plain strings.

    Parameters in sorted order in the canonical request, in alibabacloud-oss-v2's order
    in the URL. test_v4_presign_fast_path_equals_general_path holds the two paths together.
    """
    if type(expires) is not int or not 1 <= expires <= MAX_EXPIRES:
        check_expires(expires)  # raises the SigningError
    epoch, stamp = epoch_and_stamp(utc(now))
    signing = v4_cache(cache).get(credentials, stamp[:8], url.region, url.product)
    token = credentials.encoded_security_token
    token = f"&x-oss-security-token={token}" if token else ""
    credential = signing.encoded_credential
    canonical = (
        f"{url.canonical_head}x-oss-credential={credential}"
        f"&x-oss-date={stamp}&x-oss-expires={expires}{token}"
        f"&x-oss-signature-version={ALGORITHM}\n\n\n{UNSIGNED_PAYLOAD}"
    )
    to_sign = string_to_sign(stamp, signing.scope, canonical)
    return PresignedUrl(
        f"{url.url_head}{stamp}&x-oss-expires={expires}&x-oss-credential={credential}{token}"
        f"&x-oss-signature={signature(signing, to_sign)}",
        url.method,
        epoch + expires,
        {},
        to_sign,
    )


def presign_object(
    method: str,
    bucket: str,
    key: str,
    *,
    credentials: SigningCredentials,
    now: datetime,
    expires: int,
    region: str,
    endpoint: OssEndpoint,
    cache: V4KeyCache | None = None,
) -> PresignedUrl:
    """:func:`presign` of an object URL with no parameters and no headers to sign.

    The same URL as ``presign(OssRequest(...))`` for the same arguments, without building
    and checking an OssRequest per URL (the arguments are checked here, as it would).
    """
    url = object_url(method, bucket, key, region=region, endpoint=endpoint)
    return presign_url(url, credentials=credentials, now=now, expires=expires, cache=cache)


def _general_parts(
    req: OssRequest, uri: str, stamp: str, expires: int, key: V4Key
) -> tuple[str, str, dict[str, str]]:
    """(canonical request, URL query, signed headers) of a presign with any options."""
    if not _URL_PARAMS.isdisjoint(req.query):
        raise SigningError("query", "must not contain x-oss-* signing parameters")
    lower = req.lower_headers()
    extra = additional_headers(lower, req.additional_headers)
    items = [(pct(k), pct(v)) for k, v in req.query.items()]
    items += (
        ("x-oss-signature-version", ALGORITHM),
        ("x-oss-date", stamp),
        ("x-oss-expires", str(expires)),
        ("x-oss-credential", key.encoded_credential),
    )
    if req.credentials.security_token:
        items.append(("x-oss-security-token", req.credentials.encoded_security_token))
    if extra:
        items.append(("x-oss-additional-headers", pct(";".join(extra))))
    signed = {
        k: v for k, v in req.headers.items() if signed_by_default(lk := k.lower()) or lk in extra
    }
    return (
        canonical_request(req.method, uri, items, lower, extra),
        "&".join([f"{k}={v}" if v else k for k, v in items]),
        signed,
    )
