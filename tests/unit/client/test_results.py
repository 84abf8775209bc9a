"""Typed results: built from replies, frozen, secrets out of repr, the mobile-SDK JSON shape."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.any_pb2 import Any as AnyMessage
from google.rpc import code_pb2, error_details_pb2, status_pb2
from support.scripted_server import EXPIRATION, token_reply

from satchel import (
    InvalidArgumentError,
    Method,
    Permission,
    PermissionDeniedError,
    Presigned,
    PresignItem,
    Token,
)
from satchel.client import issue_token_request, presign_many_request, presign_request
from satchel.results import presign_outcomes
from satchel.v1 import token_service_pb2 as pb

# What Android's OSSAuthCredentialsProvider and iOS's OSSAuthCredentialProvider read.
MOBILE_SDK_KEYS = {"StatusCode", "AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}


def presigned_reply() -> pb.PresignObjectResponse:
    reply = pb.PresignObjectResponse(
        url="https://b.oss.example/players/p1/k?x-oss-signature=SIGNATURE&x-oss-security-token=TOK",
        method=pb.HTTP_METHOD_POST,
        headers={"Content-Type": "image/png"},
        form_fields={"policy": "POLICY", "x-oss-signature": "SIGNATURE"},
        key="players/p1/k",
        location=pb.StorageLocation(bucket="b", region="r", endpoint="e", prefix="players/p1/"),
    )
    reply.expiration.FromDatetime(EXPIRATION)
    return reply


def test_token_from_reply_is_typed() -> None:
    reply = token_reply("p1")
    reply.permissions[:] = [pb.PERMISSION_READ, pb.PERMISSION_WRITE]
    token = Token.from_proto(reply)
    assert token.credentials.access_key_id == "STS.scripted"
    assert token.expiration == EXPIRATION
    assert token.expiration.tzinfo is not None
    assert token.location.prefix == "players/p1/"
    assert token.permissions == (Permission.READ, Permission.WRITE)


def test_reprs_never_show_secrets() -> None:
    token = Token.from_proto(token_reply("p1"))
    presigned = Presigned.from_proto(presigned_reply())
    text = repr(token) + str(token) + repr(presigned) + str(presigned)
    for secret in ("s3cr3t", "t0k3n", "SIGNATURE", "TOK", "POLICY"):
        assert secret not in text
    assert "STS.scripted" in text  # the public key id stays, for logs and support


def test_results_are_frozen() -> None:
    token = Token.from_proto(token_reply("p1"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        token.credentials.access_key_id = "x"  # type: ignore[misc]
    presigned = Presigned.from_proto(presigned_reply())
    with pytest.raises(TypeError):
        presigned.form_fields["policy"] = "x"  # type: ignore[index]


def test_presigned_from_reply() -> None:
    presigned = Presigned.from_proto(presigned_reply())
    assert presigned.method is Method.POST
    assert dict(presigned.headers) == {"Content-Type": "image/png"}
    assert presigned.form_fields["policy"] == "POLICY"
    assert presigned.expiration == EXPIRATION
    assert presigned.to_dict()["expiration"] == "2030-01-02T03:04:05Z"
    assert json.loads(json.dumps(presigned.to_dict()))["form_fields"]["policy"] == "POLICY"


def test_sts_server_response_is_what_the_mobile_sdks_read() -> None:
    token = Token.from_proto(token_reply("p1"))
    body = json.loads(token.to_sts_server_json())
    assert body == token.sts_server_response()
    assert set(body) >= MOBILE_SDK_KEYS
    assert set(body) - MOBILE_SDK_KEYS == {"Bucket", "Endpoint", "Region", "Prefix"}
    assert body["StatusCode"] == "200"
    assert body["AccessKeyId"] == "STS.scripted"
    assert body["AccessKeySecret"] == "s3cr3t"
    assert body["SecurityToken"] == "t0k3n"
    # STS's own form, which iOS parses with yyyy-MM-dd'T'HH:mm:ssZ.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["Expiration"])
    assert body["Expiration"] == "2030-01-02T03:04:05Z"
    assert body["Prefix"] == "players/p1/"
    assert all(isinstance(value, str) for value in body.values())


def test_expiration_in_another_zone_is_rendered_in_utc() -> None:
    token = Token.from_proto(token_reply("p1"))
    shifted = dataclasses.replace(
        token.credentials, expiration=EXPIRATION.astimezone(datetime.now().astimezone().tzinfo)
    )
    body = dataclasses.replace(token, credentials=shifted).sts_server_response()
    assert body["Expiration"] == "2030-01-02T03:04:05Z"


def test_request_builders_map_to_the_wire() -> None:
    request = issue_token_request(
        "p1", ["read", Permission.LIST], scope="s", ttl=timedelta(minutes=20)
    )
    assert list(request.permissions) == [pb.PERMISSION_READ, pb.PERMISSION_LIST]
    assert request.ttl.seconds == 1200
    assert request.scope == "s"
    assert not issue_token_request("p1").HasField("ttl")
    presign = presign_request("p1", "k", "put", expires_in=60.5, max_size=10, forbid_overwrite=True)
    assert presign.method == pb.HTTP_METHOD_PUT
    assert presign.expires_in.ToTimedelta() == timedelta(seconds=60.5)
    assert (presign.max_size, presign.forbid_overwrite) == (10, True)
    with pytest.raises(ValueError):
        issue_token_request("p1", ["admin"])
    with pytest.raises(ValueError):
        presign_request("p1", "k", "PATCH")


def test_wire_enums_round_trip() -> None:
    assert {Permission.from_wire(p.wire) for p in Permission} == set(Permission)
    assert {Method.from_wire(m.wire) for m in Method} == set(Method)
    assert EXPIRATION.tzinfo is UTC


def test_presign_many_outcomes_are_typed_per_item_and_keep_urls_out_of_repr() -> None:
    bad_key = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="items[1].key", description="no")
        ]
    )
    detail = AnyMessage()
    detail.Pack(bad_key)
    reply = pb.PresignObjectsResponse(
        results=[
            pb.PresignResult(presigned=presigned_reply()),
            pb.PresignResult(
                error=status_pb2.Status(
                    code=code_pb2.INVALID_ARGUMENT, message="items[1].key: no", details=[detail]
                )
            ),
            pb.PresignResult(error=status_pb2.Status(code=code_pb2.PERMISSION_DENIED, message="m")),
        ]
    )
    presigned, invalid, denied = presign_outcomes(reply)
    assert isinstance(presigned, Presigned)
    assert presigned.form_fields["policy"] == "POLICY"
    assert isinstance(invalid, InvalidArgumentError)
    assert [(v.field, v.description) for v in invalid.field_violations] == [("items[1].key", "no")]
    assert isinstance(denied, PermissionDeniedError)
    shown = repr([presigned, invalid, denied])
    assert "SIGNATURE" not in shown
    assert "TOK" not in shown
    assert "POLICY" not in shown

    request = presign_many_request(
        "p1",
        [
            PresignItem("a.png", "put", content_type="image/png", content_length=3),
            PresignItem("b", Method.POST, expires_in=timedelta(minutes=5), max_size=9),
            PresignItem("c", forbid_overwrite=False, expires_in=60),
        ],
        scope="saves",
    )
    assert (request.player_id, request.scope) == ("p1", "saves")
    put, post, get = request.items
    assert (put.method, put.content_type, put.content_length) == (
        pb.HTTP_METHOD_PUT,
        "image/png",
        3,
    )
    assert not put.HasField("expires_in")
    assert (post.method, post.max_size, post.expires_in.seconds) == (pb.HTTP_METHOD_POST, 9, 300)
    assert not post.HasField("content_length")
    assert (get.method, get.expires_in.seconds) == (pb.HTTP_METHOD_GET, 60)
