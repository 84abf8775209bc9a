"""Typed values the client returns: frozen, `datetime` expirations, secrets kept out of repr.

The generated messages stay an implementation detail: callers get these values, built once
from a reply by `Token.from_proto` / `Presigned.from_proto`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from satchel.errors import SatchelError, error_from_status_message
from satchel.v1 import token_service_pb2 as pb


class Permission(StrEnum):
    """What a token may do inside the player's folder (`satchel.v1.Permission`)."""

    READ = "read"
    WRITE = "write"
    LIST = "list"
    DELETE = "delete"

    @property
    def wire(self) -> pb.Permission.ValueType:
        return _PERMISSION_TO_WIRE[self]

    @classmethod
    def from_wire(cls, value: pb.Permission.ValueType) -> Permission:
        return _PERMISSION_FROM_WIRE[value]


class Method(StrEnum):
    """The HTTP operation a presigned URL or form is good for (`satchel.v1.HttpMethod`)."""

    GET = "GET"
    PUT = "PUT"
    HEAD = "HEAD"
    DELETE = "DELETE"
    POST = "POST"

    @property
    def wire(self) -> pb.HttpMethod.ValueType:
        return _METHOD_TO_WIRE[self]

    @classmethod
    def from_wire(cls, value: pb.HttpMethod.ValueType) -> Method:
        return _METHOD_FROM_WIRE[value]


_PERMISSION_TO_WIRE: dict[Permission, pb.Permission.ValueType] = {
    Permission.READ: pb.PERMISSION_READ,
    Permission.WRITE: pb.PERMISSION_WRITE,
    Permission.LIST: pb.PERMISSION_LIST,
    Permission.DELETE: pb.PERMISSION_DELETE,
}
_PERMISSION_FROM_WIRE = {wire: permission for permission, wire in _PERMISSION_TO_WIRE.items()}
_METHOD_TO_WIRE: dict[Method, pb.HttpMethod.ValueType] = {
    Method.GET: pb.HTTP_METHOD_GET,
    Method.PUT: pb.HTTP_METHOD_PUT,
    Method.HEAD: pb.HTTP_METHOD_HEAD,
    Method.DELETE: pb.HTTP_METHOD_DELETE,
    Method.POST: pb.HTTP_METHOD_POST,
}
_METHOD_FROM_WIRE = {wire: method for method, wire in _METHOD_TO_WIRE.items()}


def _datetime(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def iso_utc(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ`: the form STS itself uses for Expiration (whole seconds, UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class StorageLocation:
    """Where the player's files live: bucket, region, endpoint URL and the player's prefix."""

    bucket: str
    region: str
    endpoint: str
    prefix: str

    @classmethod
    def from_proto(cls, message: pb.StorageLocation) -> StorageLocation:
        return cls(message.bucket, message.region, message.endpoint, message.prefix)

    def to_dict(self) -> dict[str, str]:
        return {
            "bucket": self.bucket,
            "region": self.region,
            "endpoint": self.endpoint,
            "prefix": self.prefix,
        }


@dataclass(frozen=True, slots=True)
class Credentials:
    """Temporary STS credentials. The secret and the token never appear in repr."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expiration: datetime

    @classmethod
    def from_proto(cls, message: pb.Credentials) -> Credentials:
        return cls(
            access_key_id=message.access_key_id,
            access_key_secret=message.access_key_secret,
            security_token=message.security_token,
            expiration=_datetime(message.expiration),
        )


@dataclass(frozen=True, slots=True)
class Token:
    """What `IssueToken` returns: credentials, where they reach, and what they may do."""

    credentials: Credentials
    location: StorageLocation
    permissions: tuple[Permission, ...]

    @classmethod
    def from_proto(cls, reply: pb.IssueTokenResponse) -> Token:
        return cls(
            credentials=Credentials.from_proto(reply.credentials),
            location=StorageLocation.from_proto(reply.location),
            permissions=tuple(Permission.from_wire(p) for p in reply.permissions),
        )

    @property
    def expiration(self) -> datetime:
        return self.credentials.expiration

    def sts_server_response(self) -> dict[str, str]:
        """The body Alibaba's mobile OSS SDKs expect from an "STS app server", plus location.

        `OSSAuthCredentialsProvider` (Android, aliyun/aliyun-oss-android-sdk,
        oss-android-sdk/.../common/auth/OSSAuthCredentialsProvider.java) and
        `OSSAuthCredentialProvider` (iOS, aliyun/aliyun-oss-ios-sdk, AliyunOSSSDK/OSSModel.m)
        GET their auth server URL and read exactly these keys: `StatusCode` (200 means
        success; Android `getInt` and iOS `intValue` accept the string "200" that Alibaba's
        sample STS servers send), `AccessKeyId`, `AccessKeySecret`, `SecurityToken`, and
        `Expiration`, which iOS parses as `yyyy-MM-dd'T'HH:mm:ssZ`: STS's own UTC form.
        Both SDKs ignore other keys, so `Bucket`, `Endpoint`, `Region` and `Prefix` ride
        along for app code that builds its client from the same reply.
        """
        return {
            "StatusCode": "200",
            "AccessKeyId": self.credentials.access_key_id,
            "AccessKeySecret": self.credentials.access_key_secret,
            "SecurityToken": self.credentials.security_token,
            "Expiration": iso_utc(self.credentials.expiration),
            "Bucket": self.location.bucket,
            "Endpoint": self.location.endpoint,
            "Region": self.location.region,
            "Prefix": self.location.prefix,
        }

    def to_sts_server_json(self) -> str:
        """`sts_server_response()` as a JSON document, ready to send to the player's app."""
        return json.dumps(self.sts_server_response())

    def to_dict(self) -> dict[str, Any]:
        """Everything, secrets included, as JSON-ready values (what `satchel issue` prints)."""
        return {
            "access_key_id": self.credentials.access_key_id,
            "access_key_secret": self.credentials.access_key_secret,
            "security_token": self.credentials.security_token,
            "expiration": iso_utc(self.credentials.expiration),
            "permissions": [str(p) for p in self.permissions],
            **self.location.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Presigned:
    """What `PresignObject` returns. The URL and form carry a signature and a security token,
    so they stay out of repr; headers must be sent exactly as given."""

    url: str = field(repr=False)
    method: Method
    headers: Mapping[str, str]
    form_fields: Mapping[str, str] = field(repr=False)
    expiration: datetime
    key: str
    location: StorageLocation

    @classmethod
    def from_proto(cls, reply: pb.PresignObjectResponse) -> Presigned:
        return cls(
            url=reply.url,
            method=Method.from_wire(reply.method),
            # Read-only views: a frozen result must not be changed through its mappings.
            headers=MappingProxyType(dict(reply.headers)),
            form_fields=MappingProxyType(dict(reply.form_fields)),
            expiration=_datetime(reply.expiration),
            key=reply.key,
            location=StorageLocation.from_proto(reply.location),
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values (what `satchel presign` prints)."""
        return {
            "url": self.url,
            "method": str(self.method),
            "headers": dict(self.headers),
            "form_fields": dict(self.form_fields),
            "expiration": iso_utc(self.expiration),
            "key": self.key,
            **self.location.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class PresignItem:
    """One object to presign in `presign_many`: the options `presign` takes, per object."""

    key: str
    method: Method | str = Method.GET
    expires_in: timedelta | float | None = None  # absent: the scope's default
    content_type: str = ""  # PUT and POST: the Content-Type the upload must carry (signed)
    max_size: int = 0  # POST: the largest upload accepted, in bytes; 0: the scope's default
    forbid_overwrite: bool = False  # PUT and POST: refuse to replace an existing object
    content_length: int | None = None  # PUT: the body's exact size in bytes (signed)

    def to_proto(self) -> pb.PresignItem:
        item = pb.PresignItem(
            key=self.key,
            method=Method(str(self.method).upper()).wire,
            content_type=self.content_type,
            max_size=self.max_size,
            forbid_overwrite=self.forbid_overwrite,
        )
        if self.expires_in is not None:
            expires = self.expires_in
            item.expires_in.FromTimedelta(
                expires if isinstance(expires, timedelta) else timedelta(seconds=expires)
            )
        if self.content_length is not None:
            item.content_length = self.content_length
        return item


PresignOutcome = Presigned | SatchelError
"""One item's answer in `presign_many`: its URL or form, or why it was refused."""


def presign_outcomes(reply: pb.PresignObjectsResponse) -> list[PresignOutcome]:
    """Each item's `Presigned`, or the typed error (not raised) it was refused with."""
    return [
        Presigned.from_proto(result.presigned)
        if result.WhichOneof("outcome") == "presigned"
        else error_from_status_message(result.error)
        for result in reply.results
    ]
