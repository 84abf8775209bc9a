"""PresignObject's domain: one URL or POST form for one object, signed locally.

The URL's lifetime is min(requested, the signer's remaining life minus a
margin), and the expiration returned is that true moment: a URL never outlives
the credentials that signed it, and is never handed out already dead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import urlsplit

from satchel_server.config import ScopeSettings
from satchel_server.credentials.types import Clock, utc_now
from satchel_server.errors import UpstreamUnavailable
from satchel_server.presigning.signing_credentials import ScopeSigningCredentials
from satchel_server.rules.scopes import PresignRequest
from satchel_server.signing import (
    OssEndpoint,
    OssRequest,
    PostForm,
    PostPolicyRequest,
    PresignedUrl,
    SigningCredentials,
    V4KeyCache,
    post_form_v1,
    post_form_v4,
    presign_v1,
    presign_v4,
)
from satchel_server.vocabulary import HttpMethod

# What a PostObject answers on success (OSS's own default); sent so clients can rely on it.
POST_SUCCESS_STATUS = "204"
# OSS's object ACL value that means "as the bucket says".
INHERITED_ACL = "default"
# A PUT's Content-Type is part of its signature, and most HTTP clients send one of
# their own when none is set (aiohttp, urllib, OkHttp). So a PUT always signs one,
# and the response's headers tell the client exactly what to send.
DEFAULT_PUT_CONTENT_TYPE = "application/octet-stream"
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
# What a presigned PUT signs beyond the defaults: its body's size (x-oss-additional-headers).
SIGNED_SIZE_HEADERS = ("content-length",)


class _SignatureVersion(NamedTuple):
    """How one OSS signature version signs a URL and a POST form."""

    url: Callable[[OssRequest, V4KeyCache], PresignedUrl]
    form: Callable[[PostPolicyRequest, V4KeyCache], PostForm]


def _url_v1(request: OssRequest, keys: V4KeyCache) -> PresignedUrl:
    return presign_v1(request)  # V1 derives no key


def _form_v1(request: PostPolicyRequest, keys: V4KeyCache) -> PostForm:
    return post_form_v1(request)  # V1 derives no key


# A scope's `presign_signature` -> how it signs.
SIGNATURE_VERSIONS: Mapping[str, _SignatureVersion] = MappingProxyType(
    {"v1": _SignatureVersion(_url_v1, _form_v1), "v4": _SignatureVersion(presign_v4, post_form_v4)}
)


@dataclass(frozen=True, slots=True)
class PresignedObject:
    """A URL or POST form, and when it stops working."""

    url: str = field(repr=False)  # carries a signature and a security token
    method: HttpMethod
    headers: Mapping[str, str]
    form_fields: Mapping[str, str] = field(repr=False)  # carry the signature and the token
    expires_at: int  # epoch seconds

    @property
    def expiration(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, UTC)


def endpoint_of(scope: ScopeSettings) -> OssEndpoint:
    url = urlsplit(scope.endpoint)  # validated at load: scheme://host[:port], no path
    return OssEndpoint(host=url.netloc, scheme=url.scheme, path_style=scope.addressing == "path")


class Presigner:
    def __init__(
        self,
        scopes: Mapping[str, ScopeSettings],
        credentials: ScopeSigningCredentials,
        clock: Clock = utc_now,
    ):
        self._endpoints = {name: endpoint_of(scope) for name, scope in scopes.items()}
        self._credentials = credentials
        self._clock = clock
        # Derived V4 keys, per (access key, day, region): one HMAC chain per day, not per URL.
        self._v4_keys = V4KeyCache()

    @property
    def ready(self) -> bool:
        return self._credentials.ready

    def presign(self, request: PresignRequest) -> PresignedObject:
        scope = request.scope
        held = self._credentials.for_scope(scope.name)
        now = self._clock()
        lifetime = request.expires_seconds
        usable = held.usable_seconds(now)
        if usable is not None:
            lifetime = min(lifetime, math.floor(usable))
        if lifetime < 1:
            raise UpstreamUnavailable("presigning credentials are expiring and not yet renewed")
        version = SIGNATURE_VERSIONS[scope.presign_signature]
        if request.method is HttpMethod.POST:
            return self._post(request, version, held.credentials, now, lifetime)
        headers: dict[str, str] = {}
        additional: tuple[str, ...] = ()
        if request.method is HttpMethod.PUT:
            headers["Content-Type"] = request.content_type or DEFAULT_PUT_CONTENT_TYPE
            # Signed, so OSS refuses a body of any other size (validation makes this V4).
            assert request.content_length is not None  # validation requires it for PUT
            headers["Content-Length"] = str(request.content_length)
            additional = SIGNED_SIZE_HEADERS
        if request.forbid_overwrite:
            headers["x-oss-forbid-overwrite"] = "true"
        oss_request = OssRequest(
            method=request.method,
            bucket=scope.bucket,
            key=request.key,
            credentials=held.credentials,
            now=now,
            headers=headers,
            region=scope.region,
            expires=lifetime,
            endpoint=self._endpoints[scope.name],
            additional_headers=additional,
        )
        signed = version.url(oss_request, self._v4_keys)
        return PresignedObject(
            url=signed.url,
            method=request.method,
            headers=dict(signed.signed_headers),
            form_fields=_NO_HEADERS,
            expires_at=signed.expires_at,
        )

    def _post(
        self,
        request: PresignRequest,
        version: _SignatureVersion,
        credentials: SigningCredentials,
        now: datetime,
        lifetime: int,
    ) -> PresignedObject:
        scope = request.scope
        assert request.max_size is not None  # validation sets it for POST
        policy_request = PostPolicyRequest(
            bucket=scope.bucket,
            credentials=credentials,
            now=now,
            expires=lifetime,
            key=request.key,
            content_length_range=(0, request.max_size),
            content_type=request.content_type,
            forbid_overwrite=request.forbid_overwrite,
            # The object inherits the bucket's ACL: a player's upload never makes itself public.
            object_acl=INHERITED_ACL,
            region=scope.region,
            endpoint=self._endpoints[scope.name],
        )
        form = version.form(policy_request, self._v4_keys)
        assert form.url is not None  # an endpoint was given
        return PresignedObject(
            url=form.url,
            method=HttpMethod.POST,
            headers=_NO_HEADERS,
            form_fields={**form.fields, "success_action_status": POST_SUCCESS_STATUS},
            expires_at=form.expires_at,
        )
