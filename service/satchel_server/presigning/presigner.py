"""PresignObject's domain: one URL or POST form for one object, signed locally.

The URL's lifetime is min(requested, the signer's remaining life minus a
margin), and the expiration returned is that true moment: a URL never outlives
the credentials that signed it, and is never handed out already dead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import urlsplit

from satchel_server.config import ScopeSettings
from satchel_server.credentials.types import Clock, utc_now
from satchel_server.errors import UpstreamUnavailable
from satchel_server.presigning.signing_credentials import Signers
from satchel_server.rules.scopes import Method, PresignRequest
from satchel_server.signing import (
    ObjectUrl,
    OssEndpoint,
    OssRequest,
    PostPolicyRequest,
    SigningCredentials,
    V4KeyCache,
    object_url_v4,
    post_form_v1,
    post_form_v4,
    presign_url_v4,
    presign_v1,
    presign_v4,
)

# What a PostObject answers on success (OSS's own default); sent so clients can rely on it.
POST_SUCCESS_STATUS = "204"
# A PUT's Content-Type is part of its signature, and most HTTP clients send one of
# their own when none is set (aiohttp, urllib, OkHttp). So a PUT always signs one,
# and the response's headers tell the client exactly what to send.
DEFAULT_PUT_CONTENT_TYPE = "application/octet-stream"
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
# Signed with nothing but the object (a PUT signs its Content-Type, and forbid_overwrite
# its header, so those are not plain; PresignRequest only sets forbid_overwrite on writes).
_PLAIN_URL_METHODS = frozenset((Method.GET, Method.HEAD, Method.DELETE))


class Presigned(NamedTuple):
    """A URL or POST form, and when it stops working.

    A NamedTuple rather than a frozen dataclass: as immutable, and cheaper to build
    once per PresignObject call.
    """

    url: str  # carries a signature and a security token
    method: Method
    headers: Mapping[str, str]
    form_fields: Mapping[str, str]
    expires_at: int  # epoch seconds

    @property
    def expiration(self) -> datetime:
        return _moment(self.expires_at)

    def __repr__(self) -> str:
        # The URL and the form fields carry the signature and the security token.
        return (
            f"Presigned(method={self.method!r}, headers={dict(self.headers)!r}, "
            f"expires_at={self.expires_at})"
        )


@dataclass(frozen=True, slots=True)
class PresignPlan:
    """A validated request, and the part of its signing that never changes.

    For a URL with nothing but the object to sign (V4 GET, HEAD, DELETE), that is
    the URL made ready: its encoded key, host and canonical request's head. The
    servicer keeps a plan with each request it sees repeated, so a player asking
    again is signed without encoding and checking the key again.
    """

    request: PresignRequest
    object_url: ObjectUrl | None = None


@functools.lru_cache(maxsize=1024)
def _moment(epoch_seconds: int) -> datetime:
    """An expiry as a datetime: many URLs signed within a second share it."""
    return datetime.fromtimestamp(epoch_seconds, UTC)


def endpoint_of(scope: ScopeSettings) -> OssEndpoint:
    url = urlsplit(scope.endpoint)  # validated at load: scheme://host[:port], no path
    return OssEndpoint(host=url.netloc, scheme=url.scheme, path_style=scope.addressing == "path")


class Presigner:
    def __init__(
        self, scopes: Mapping[str, ScopeSettings], signers: Signers, clock: Clock = utc_now
    ):
        self._endpoints = {name: endpoint_of(scope) for name, scope in scopes.items()}
        self._signers = signers
        self._clock = clock
        # Derived V4 keys, per (access key, day, region): one HMAC chain per day, not per URL.
        self._v4_keys = V4KeyCache()

    @property
    def ready(self) -> bool:
        return self._signers.ready

    def plan(self, request: PresignRequest) -> PresignPlan:
        scope = request.scope
        plain = request.method in _PLAIN_URL_METHODS and not request.forbid_overwrite
        if scope.presign_signature == "v4" and plain:
            # No header to sign: the plain URL, made ready once.
            url = object_url_v4(
                request.method,
                scope.bucket,
                request.key,
                region=scope.region,
                endpoint=self._endpoints[scope.name],
            )
            return PresignPlan(request, url)
        return PresignPlan(request)

    def presign(self, request: PresignRequest | PresignPlan) -> Presigned:
        plan = request if isinstance(request, PresignPlan) else self.plan(request)
        request = plan.request
        scope = request.scope
        signer = self._signers.for_scope(scope.name)
        now = self._clock()
        lifetime = request.expires_seconds
        usable = signer.usable_seconds(now)
        if usable is not None:
            lifetime = min(lifetime, math.floor(usable))
        if lifetime < 1:
            raise UpstreamUnavailable("presigning credentials are expiring and not yet renewed")
        if plan.object_url is not None:
            signed = presign_url_v4(
                plan.object_url,
                credentials=signer.credentials,
                now=now,
                expires=lifetime,
                cache=self._v4_keys,
            )
            return Presigned(
                signed.url, request.method, _NO_HEADERS, _NO_HEADERS, signed.expires_at
            )
        if request.method is Method.POST:
            return self._post(request, signer.credentials, now, lifetime)
        headers: dict[str, str] = {}
        if request.method is Method.PUT:
            headers["Content-Type"] = request.content_type or DEFAULT_PUT_CONTENT_TYPE
        if request.forbid_overwrite:
            headers["x-oss-forbid-overwrite"] = "true"
        oss_request = OssRequest(
            method=request.method,
            bucket=scope.bucket,
            key=request.key,
            credentials=signer.credentials,
            now=now,
            headers=headers,
            region=scope.region,
            expires=lifetime,
            endpoint=self._endpoints[scope.name],
        )
        if scope.presign_signature == "v4":
            signed = presign_v4(oss_request, self._v4_keys)
        else:
            signed = presign_v1(oss_request)
        return Presigned(
            url=signed.url,
            method=request.method,
            headers=dict(signed.signed_headers),
            form_fields=_NO_HEADERS,
            expires_at=signed.expires_at,
        )

    def _post(
        self,
        request: PresignRequest,
        credentials: SigningCredentials,
        now: datetime,
        lifetime: int,
    ) -> Presigned:
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
            region=scope.region,
            endpoint=self._endpoints[scope.name],
        )
        if scope.presign_signature == "v4":
            form = post_form_v4(policy_request, self._v4_keys)
        else:
            form = post_form_v1(policy_request)
        assert form.url is not None  # an endpoint was given
        fields = {**form.fields, "success_action_status": POST_SUCCESS_STATUS}
        return Presigned(
            url=form.url,
            method=Method.POST,
            headers=_NO_HEADERS,
            form_fields=fields,
            expires_at=form.expires_at,
        )
