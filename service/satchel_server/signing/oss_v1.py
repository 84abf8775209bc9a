"""OSS signature V1: ``OSS AK:Base64(HMAC-SHA1(secret, StringToSign))``.

StringToSign = ``METHOD \\n Content-MD5 \\n Content-Type \\n Date-or-Expires \\n
CanonicalizedOSSHeaders + CanonicalizedResource``. The resource is ``/bucket/key`` raw (not
percent-encoded) plus the *sub-resources* present, sorted, with decoded values; any other
query parameter is unsigned. With STS credentials the token is signed: as the
``x-oss-security-token`` header, or as the ``security-token`` sub-resource in a URL.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from .encoding import encode_query, pct, pct_path
from .errors import SigningError
from .keys import SigningCredentials
from .request import OssRequest, PresignedUrl, SignedHeaders, signed_by_default
from .timefmt import check_expires, http_date

#: Query parameters that V1 signs: the union of oss2's and alibabacloud-oss-v2's lists
#: (oss2's is the larger; v2 adds ``cloudboxes``), so both SDKs' URLs verify.
SUB_RESOURCES = frozenset(
    (
        "accessPoint",
        "accessPointPolicy",
        "acl",
        "append",
        "asyncFetch",
        "bucketArchiveDirectRead",
        "bucketInfo",
        "callback",
        "callback-var",
        "cloudboxes",
        "cname",
        "comp",
        "continuation-token",
        "cors",
        "delete",
        "encryption",
        "endTime",
        "group",
        "httpsConfig",
        "inventory",
        "inventoryId",
        "lifecycle",
        "link",
        "live",
        "location",
        "logging",
        "metaQuery",
        "objectInfo",
        "objectMeta",
        "partNumber",
        "policy",
        "position",
        "publicAccessBlock",
        "qos",
        "qosInfo",
        "qosRequester",
        "redundancyTransition",
        "referer",
        "regionList",
        "replication",
        "replicationLocation",
        "replicationProgress",
        "requestPayment",
        "requesterQosInfo",
        "resourceGroup",
        "resourcePool",
        "resourcePoolBuckets",
        "resourcePoolInfo",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "restore",
        "security-token",
        "sequential",
        "startTime",
        "stat",
        "status",
        "style",
        "styleName",
        "symlink",
        "tagging",
        "transferAcceleration",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "vod",
        "website",
        "worm",
        "wormExtend",
        "wormId",
        "x-oss-ac-forward-allow",
        "x-oss-ac-source-ip",
        "x-oss-ac-subnet-mask",
        "x-oss-ac-vpc-id",
        "x-oss-access-point-name",
        "x-oss-async-process",
        "x-oss-process",
        "x-oss-redundancy-transition-taskid",
        "x-oss-request-payer",
        "x-oss-target-redundancy-type",
        "x-oss-traffic-limit",
        "x-oss-write-get-object-response",
    )
)

_URL_PARAMS = frozenset(("OSSAccessKeyId", "Expires", "Signature", "security-token"))


def canonical_resource(bucket: str | None, key: str | None, query: Mapping[str, str]) -> str:
    """``/bucket/key?sub=v&flag``: raw bytes, sub-resources only, sorted by name."""
    path = f"/{bucket}/{key or ''}" if bucket else "/"
    subs = sorted((k, v) for k, v in query.items() if k in SUB_RESOURCES)
    if not subs:
        return path
    return path + "?" + "&".join(f"{k}={v}" if v else k for k, v in subs)


def canonical_headers(lower_headers: Mapping[str, str]) -> str:
    """``x-oss-*`` headers, lower-cased, sorted, one ``name:value\\n`` each."""
    return "".join(f"{k}:{v}\n" for k, v in sorted(lower_headers.items()) if k.startswith("x-oss-"))


def string_to_sign(method: str, lower_headers: Mapping[str, str], date: str, resource: str) -> str:
    return "\n".join(
        (
            method,
            lower_headers.get("content-md5", ""),
            lower_headers.get("content-type", ""),
            date,
            canonical_headers(lower_headers) + resource,
        )
    )


def signature(credentials: SigningCredentials, to_sign: str) -> str:
    return base64.b64encode(credentials.sha1_mac.digest(to_sign.encode("utf-8"))).decode("ascii")


def sign_header(req: OssRequest) -> SignedHeaders:
    """Headers to add for an ``Authorization: OSS ...`` request (``Date`` included).

    An ``x-oss-date`` header, when present, replaces ``Date`` in the StringToSign, as both
    SDKs and OSS do.
    """
    creds = req.credentials
    lower = req.lower_headers()
    added = {"date": http_date(req.now)}
    lower.update(added)
    if creds.security_token:
        added["x-oss-security-token"] = lower["x-oss-security-token"] = creds.security_token
    to_sign = string_to_sign(
        req.method,
        lower,
        lower.get("x-oss-date") or lower["date"],
        canonical_resource(req.bucket, req.key, req.query),
    )
    added["authorization"] = f"OSS {creds.access_key_id}:{signature(creds, to_sign)}"
    return SignedHeaders(added, to_sign)


def presign(req: OssRequest) -> PresignedUrl:
    """A V1 query-signed URL: ``...?<query>&OSSAccessKeyId=&Expires=[&security-token=]&Signature=``.

    ``Expires`` is absolute: ``now + expires`` in epoch seconds.
    """
    path = pct_path(req.object_key())
    _check_reserved(req.query)
    creds = req.credentials
    expires_at = int(req.now.timestamp()) + check_expires(req.expires)
    query = dict(req.query)
    if creds.security_token:
        query["security-token"] = creds.security_token
    lower = req.lower_headers()
    to_sign = string_to_sign(
        req.method, lower, str(expires_at), canonical_resource(req.bucket, req.key, query)
    )
    items = encode_query(req.query)
    items.append(f"OSSAccessKeyId={pct(creds.access_key_id)}")
    items.append(f"Expires={expires_at}")
    if creds.security_token:
        items.append(f"security-token={creds.encoded_security_token}")
    items.append(f"Signature={pct(signature(creds, to_sign))}")
    return PresignedUrl(
        req.url_encoded(path) + "&".join(items),
        req.method,
        expires_at,
        {k: v for k, v in req.headers.items() if signed_by_default(k.lower())},
        to_sign,
    )


def _check_reserved(query: Mapping[str, str]) -> None:
    if not _URL_PARAMS.isdisjoint(query):
        raise SigningError(
            "query",
            "must not contain OSSAccessKeyId, Expires, Signature "
            "or security-token (the signer adds them)",
        )
