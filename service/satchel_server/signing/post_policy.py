"""PostObject: the policy document and the form fields (V1 and V4).

A browser/app upload form is the only way OSS enforces an upload size
(``content-length-range``). The policy is compact JSON, Base64-encoded; the signature is
over that Base64 text: V1 ``Base64(HMAC-SHA1(secret, policy))``, V4
``hex(HMAC-SHA256(v4_signing_key, policy))`` with the V4 fields also fixed by conditions.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .encoding import check_object_key
from .errors import SigningError
from .keys import SigningCredentials, V4Key, V4KeyCache, v4_cache
from .oss_v4 import ALGORITHM
from .request import OssEndpoint, check_bucket
from .timefmt import check_expires, iso_basic, iso_millis, utc

MAX_OBJECT_SIZE = 5 * 1024**3  # PostObject's own ceiling: 5 GiB


@dataclass(frozen=True)
class PostPolicyRequest:
    """What an upload form allows. Exactly one of ``key`` (that key only) and
    ``key_prefix`` (any key starting with it) is set."""

    bucket: str
    credentials: SigningCredentials
    now: datetime
    expires: int
    key: str | None = None
    key_prefix: str | None = None
    content_length_range: tuple[int, int] | None = None
    content_type: str | None = None
    forbid_overwrite: bool = False
    # Pinned by an `eq` condition: OSS checks only the fields a policy names, so an
    # unpinned form lets the uploader add x-oss-object-acl (public-read, say).
    object_acl: str | None = None
    region: str | None = None  # required for V4
    endpoint: OssEndpoint | None = None
    product: str = "oss"

    def __post_init__(self) -> None:
        check_bucket(self.bucket)
        if (self.key is None) == (self.key_prefix is None):
            raise SigningError("key", "set exactly one of key and key_prefix")
        if self.key is not None:
            check_object_key(self.key, required=True)
        if self.key_prefix is not None:
            check_object_key(self.key_prefix, required=False)
        check_expires(self.expires)
        if self.content_length_range is not None:
            low, high = self.content_length_range
            if not 0 <= low <= high <= MAX_OBJECT_SIZE:
                raise SigningError(
                    "content_length_range", f"must satisfy 0 <= min <= max <= {MAX_OBJECT_SIZE}"
                )
        object.__setattr__(self, "now", utc(self.now))


@dataclass(frozen=True)
class PostForm:
    """``fields`` to send as multipart form fields (before the ``file`` field)."""

    url: str | None
    # These carry the signature or the security token (the policy names it): not in reprs.
    fields: Mapping[str, str] = field(repr=False)
    policy: str = field(repr=False)  # the Base64 text that was signed
    policy_document: Mapping[str, Any] = field(repr=False)
    expires_at: int


def policy_document(req: PostPolicyRequest, extra: list[Any]) -> dict[str, Any]:
    conditions: list[Any] = [{"bucket": req.bucket}]
    if req.key is not None:
        conditions.append(["eq", "$key", req.key])
    else:
        conditions.append(["starts-with", "$key", req.key_prefix])
    if req.content_length_range is not None:
        conditions.append(["content-length-range", *req.content_length_range])
    if req.content_type is not None:
        conditions.append(["eq", "$Content-Type", req.content_type])
    if req.forbid_overwrite:
        conditions.append({"x-oss-forbid-overwrite": "true"})
    if req.object_acl is not None:
        conditions.append(["eq", "$x-oss-object-acl", req.object_acl])
    if req.credentials.security_token:
        conditions.append({"x-oss-security-token": req.credentials.security_token})
    conditions.extend(extra)
    return {
        "expiration": iso_millis(req.now + timedelta(seconds=req.expires)),
        "conditions": conditions,
    }


def encode_policy(document: Mapping[str, Any]) -> str:
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def sign_policy_v1(credentials: SigningCredentials, policy: str) -> str:
    return base64.b64encode(credentials.sha1_mac.digest(policy.encode("ascii"))).decode("ascii")


def sign_policy_v4(key: V4Key, policy: str) -> str:
    return key.mac.hexdigest(policy.encode("ascii"))


def _common_fields(req: PostPolicyRequest) -> dict[str, str]:
    fields: dict[str, str] = {}
    if req.key is not None:
        fields["key"] = req.key
    if req.content_type is not None:
        fields["Content-Type"] = req.content_type
    if req.forbid_overwrite:
        fields["x-oss-forbid-overwrite"] = "true"
    if req.object_acl is not None:
        fields["x-oss-object-acl"] = req.object_acl
    if req.credentials.security_token:
        fields["x-oss-security-token"] = req.credentials.security_token
    return fields


def _form(
    req: PostPolicyRequest, doc: dict[str, Any], fields: dict[str, str], policy: str
) -> PostForm:
    url = req.endpoint.url(req.bucket, None) if req.endpoint else None
    return PostForm(url, fields, policy, doc, int(req.now.timestamp()) + req.expires)


def post_form_v1(req: PostPolicyRequest) -> PostForm:
    doc = policy_document(req, [])
    policy = encode_policy(doc)
    fields = _common_fields(req)
    fields.update(
        {
            "OSSAccessKeyId": req.credentials.access_key_id,
            "policy": policy,
            "Signature": sign_policy_v1(req.credentials, policy),
        }
    )
    return _form(req, doc, fields, policy)


def post_form_v4(req: PostPolicyRequest, cache: V4KeyCache | None = None) -> PostForm:
    if not req.region:
        raise SigningError("region", "is required for OSS V4 signatures")
    stamp = iso_basic(req.now)
    key = v4_cache(cache).get(req.credentials, stamp[:8], req.region, req.product)
    v4 = {
        "x-oss-signature-version": ALGORITHM,
        "x-oss-credential": key.credential,
        "x-oss-date": stamp,
    }
    doc = policy_document(req, [{k: v} for k, v in v4.items()])
    policy = encode_policy(doc)
    fields = _common_fields(req)
    fields.update(v4)
    fields.update({"policy": policy, "x-oss-signature": sign_policy_v4(key, policy)})
    return _form(req, doc, fields, policy)
