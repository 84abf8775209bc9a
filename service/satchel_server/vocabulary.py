"""The words the API, the configuration and the rules share: permissions and HTTP methods.

The proto is the source: every value of `satchel.v1.Permission` and `satchel.v1.HttpMethod`
(but the unspecified zero) has exactly one member here, of the same name, and the tables to
and from the wire are built from the proto's names. A value added to the proto without a
member here fails at import, not at the first call that sends it.
"""

from __future__ import annotations

import enum

from satchel.v1 import token_service_pb2 as pb


class PlayerPermission(enum.StrEnum):
    """What a player's credentials may do in the player's folder; the value is the config name."""

    READ = "read"
    WRITE = "write"
    LIST = "list"
    DELETE = "delete"


class HttpMethod(enum.StrEnum):
    """The operation a presigned URL or form is good for; the value is the HTTP method."""

    GET = "GET"
    PUT = "PUT"
    HEAD = "HEAD"
    DELETE = "DELETE"
    POST = "POST"


PERMISSION_FROM_WIRE: dict[pb.Permission.ValueType, PlayerPermission] = {
    value: PlayerPermission[name.removeprefix("PERMISSION_")]
    for name, value in pb.Permission.items()
    if value != pb.PERMISSION_UNSPECIFIED
}
PERMISSION_TO_WIRE = {member: value for value, member in PERMISSION_FROM_WIRE.items()}
METHOD_FROM_WIRE: dict[pb.HttpMethod.ValueType, HttpMethod] = {
    value: HttpMethod[name.removeprefix("HTTP_METHOD_")]
    for name, value in pb.HttpMethod.items()
    if value != pb.HTTP_METHOD_UNSPECIFIED
}

PERMISSION_NAMES: tuple[str, ...] = tuple(PlayerPermission)
METHOD_NAMES: tuple[str, ...] = tuple(HttpMethod)
