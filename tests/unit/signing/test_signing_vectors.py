"""Golden vectors: the documented examples and the SDK-produced cases, byte for byte."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from satchel_server.signing import (
    Acs3Request,
    OssEndpoint,
    OssRequest,
    RpcRequest,
    SigningCredentials,
    oss_v1,
    presign_v1,
    presign_v4,
    sign_acs3,
    sign_header_v1,
    sign_header_v4,
    sign_rpc,
)
from satchel_server.signing.post_policy import encode_policy, sign_policy_v1
from satchel_server.signing.timefmt import parse_iso_extended


def _creds(case: dict[str, Any]) -> SigningCredentials:
    return SigningCredentials(
        case["access_key_id"], case["access_key_secret"], case.get("security_token")
    )


def test_documented_rpc_describe_regions(documented: dict[str, Any]) -> None:
    v = documented["rpc_describe_regions"]
    signed = sign_rpc(
        RpcRequest(
            v["method"],
            v["action"],
            v["version"],
            _creds(v),
            parse_iso_extended(v["timestamp"]),
            v["nonce"],
            format=v["format"],
        )
    )
    assert signed.string_to_sign == v["string_to_sign"]
    assert signed.signature == v["signature"]
    assert signed.query.endswith("&Signature=OLeaidS1JvxuMvnyHOwuJ%2BuX5qY%3D")


def test_documented_acs3_run_instances(documented: dict[str, Any]) -> None:
    v = documented["acs3_run_instances"]
    signed = sign_acs3(
        Acs3Request(
            v["method"],
            v["host"],
            v["action"],
            v["version"],
            _creds(v),
            parse_iso_extended(v["timestamp"]),
            v["nonce"],
            query=v["query"],
        )
    )
    assert (
        hashlib.sha256(signed.canonical_request.encode()).hexdigest()
        == v["hashed_canonical_request"]
    )
    assert signed.headers["authorization"] == v["authorization"]


def test_documented_oss_v1_presign(documented: dict[str, Any]) -> None:
    v = documented["oss_v1_presign"]
    now = datetime.fromtimestamp(v["expires_at"] - 60).astimezone()
    url = presign_v1(
        OssRequest(
            v["method"],
            v["bucket"],
            v["key"],
            _creds(v),
            now,
            expires=60,
            endpoint=OssEndpoint("oss-cn-hangzhou.aliyuncs.com"),
        )
    )
    assert url.string_to_sign == v["string_to_sign"]
    assert url.url.endswith("&Signature=EwaNTn1erJGkimiJ9WmXgwnANLc%3D")


def test_documented_oss_v1_header(documented: dict[str, Any]) -> None:
    v = documented["oss_v1_header"]
    lower = {k.lower(): val for k, val in v["headers"].items()}
    to_sign = oss_v1.string_to_sign(
        v["method"], lower, v["date"], oss_v1.canonical_resource(v["bucket"], v["key"], {})
    )
    assert f"OSS {v['access_key_id']}:{oss_v1.signature(_creds(v), to_sign)}" == v["authorization"]


def _sdk_cases(kind: str) -> list[Any]:
    path = Path(__file__).resolve().parents[2] / "vectors" / "sdk_vectors.json"
    cases = json.loads(path.read_text())["cases"]
    return [
        pytest.param(c, id=f"{c['source']}-{i}") for i, c in enumerate(cases) if c["kind"] == kind
    ]


def _oss_request(inp: dict[str, Any], **extra: Any) -> OssRequest:
    host = urlsplit(inp["endpoint"]).netloc
    return OssRequest(
        inp["method"],
        inp["bucket"],
        inp["key"],
        _creds(inp),
        datetime.fromisoformat(inp["now"]),
        region=inp["region"],
        headers=inp.get("headers", {}),
        endpoint=OssEndpoint(host, path_style=inp.get("path_style", False)),
        **extra,
    )


@pytest.mark.parametrize("case", _sdk_cases("presign"))
def test_sdk_presign_vectors(case: dict[str, Any]) -> None:
    inp = case["input"]
    presign = presign_v4 if inp["version"] == "v4" else presign_v1
    assert presign(_oss_request(inp, expires=inp["expires"])).url == case["expected"]["url"]


@pytest.mark.parametrize("case", _sdk_cases("header"))
def test_sdk_header_vectors(case: dict[str, Any]) -> None:
    inp = case["input"]
    sign = sign_header_v4 if inp["version"] == "v4" else sign_header_v1
    assert sign(_oss_request(inp)).headers["authorization"] == case["expected"]["authorization"]


@pytest.mark.parametrize("case", _sdk_cases("rpc"))
def test_sdk_rpc_vectors(case: dict[str, Any]) -> None:
    inp = case["input"]
    signed = sign_rpc(
        RpcRequest(
            inp["method"],
            "AssumeRole",
            "2015-04-01",
            _creds(inp),
            parse_iso_extended(inp["timestamp"]),
            inp["nonce"],
            params=inp["params"],
        )
    )
    assert signed.string_to_sign == case["expected"]["string_to_sign"]
    sdk_query = case["expected"]["url"].removeprefix("/?")
    # Same parameters, same bytes; the SDK keeps insertion order, we send them sorted.
    assert sorted(signed.query.split("&")) == sorted(sdk_query.split("&"))


def test_documented_post_policy_v1(documented: dict[str, Any]) -> None:
    v = documented["post_policy_v1"]
    policy = encode_policy(v["policy_document"])
    assert policy == v["policy"]
    assert sign_policy_v1(_creds(v), policy) == v["signature"]
