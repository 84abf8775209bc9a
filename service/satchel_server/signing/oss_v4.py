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

from .encoding import pct, pct_path, sorted_pairs
from .errors import SigningError
from .keys import V4Key, V4KeyCache, v4_cache
from .request import OssRequest, PresignedUrl, SignedHeaders, signed_by_default
from .timefmt import check_expires, epoch_and_stamp, iso_basic

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
    """A V4 query-signed URL; parameters in alibabacloud-oss-v2's order in the URL.

    Every query parameter the caller gave is signed, then the signing parameters; the
    signed headers are the caller's ``x-oss-*``, ``content-type``, ``content-md5`` and
    additional headers, which must then be sent exactly as returned.
    """
    if not _URL_PARAMS.isdisjoint(req.query):
        raise SigningError("query", "must not contain x-oss-* signing parameters")
    path = pct_path(req.object_key())
    expires = check_expires(req.expires)
    epoch, stamp = epoch_and_stamp(req.now)
    key = signing_key(req, stamp[:8], cache)
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
    uri = f"/{req.bucket}/{path}" if req.bucket else "/"  # bucket names need no encoding
    canonical = canonical_request(req.method, uri, items, lower, extra)
    to_sign = string_to_sign(stamp, key.scope, canonical)
    query = "&".join([f"{k}={v}" if v else k for k, v in items])
    signed = {
        k: v for k, v in req.headers.items() if signed_by_default(lk := k.lower()) or lk in extra
    }
    return PresignedUrl(
        f"{req.url_encoded(path)}{query}&x-oss-signature={signature(key, to_sign)}",
        req.method,
        epoch + expires,
        signed,
        to_sign,
    )
