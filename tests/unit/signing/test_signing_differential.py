"""Differential tests: Satchel's signatures equal the official SDKs' byte for byte.

Time and nonces are frozen in the SDKs (see tests/vectors/sdk_reference.py). URLs are
compared as: the part before ``?`` exactly, and the multiset of ``k=v`` items exactly
(the SDKs disagree with each other on parameter order; OSS does not care). Against
alibabacloud-oss-v2 without extra parameters the whole URL is compared, order included.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from types import ModuleType
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satchel_server.signing import (
    OssEndpoint,
    OssRequest,
    RpcRequest,
    SigningCredentials,
    parse_oss_authorization,
    presign_v1,
    presign_v4,
    sign_header_v1,
    sign_header_v4,
    sign_rpc,
    verify_acs3,
)

ENDPOINT_HOST = "oss-cn-hangzhou.aliyuncs.com"
AUTH = {"ak": "LTAI5tSatchelKey", "sk": "satchel/secret+="}  # what the SDK drivers take
ENDPOINT = f"https://{ENDPOINT_HOST}"
REGION = "cn-hangzhou"
BUCKET = "satchel-bkt"
# SATCHEL_HYPO_EXAMPLES raises the count for a deeper local run; the default keeps CI fast.
SETTINGS = settings(
    max_examples=int(os.environ.get("SATCHEL_HYPO_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_SPECIAL = [*"abcXYZ019 +=&?#%~*/._-", "ü", "中", "😀", "..", "//"]


def _cap(text: str) -> str:
    """Trim to at most 1023 UTF-8 bytes without splitting a character."""
    return text.encode("utf-8")[:1023].decode("utf-8", errors="ignore")


keys = (
    st.one_of(
        st.lists(st.sampled_from(_SPECIAL), min_size=1, max_size=40).map("".join),
        st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=60),
        st.sampled_from(["./a", "../a", "a/./b/../c", "a//b", "/lead", "trail/", ".", ".."]),
        st.integers(300, 400).map(lambda n: _cap("中/" * n)),  # near the 1023-byte limit
    )
    .map(_cap)
    .filter(lambda k: k.strip() != "" and not k.startswith("?"))
)
tokens = st.one_of(
    st.none(), st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=800)
)
expiries = st.integers(1, 604800)
nows = st.integers(1_600_000_000, 1_900_000_000).map(lambda t: datetime.fromtimestamp(t, UTC))
content_types = st.sampled_from(
    ["", "text/plain", "application/octet-stream", "image/png; charset=x+y"]
)
sub_resources = st.dictionaries(
    st.sampled_from(
        [
            "response-content-type",
            "response-content-disposition",
            "versionId",
            "x-oss-process",
            "acl",
            "uploads",
            "partNumber",
            "uploadId",
            "foo",
        ]
    ),
    st.text(st.sampled_from(list("ab =&/+%?ü")), max_size=8),
    max_size=3,
)


def _creds(token: str | None) -> SigningCredentials:
    return SigningCredentials(AUTH["ak"], AUTH["sk"], token)


def _split(url: str) -> tuple[str, list[str]]:
    base, _, query = url.partition("?")
    return base, sorted(query.split("&"))


def _request(method: str, key: str, token: str | None, now: datetime, **kw: Any) -> OssRequest:
    return OssRequest(
        method,
        BUCKET,
        key,
        _creds(token),
        now,
        region=REGION,
        endpoint=OssEndpoint(ENDPOINT_HOST, path_style=kw.pop("path_style", False)),
        **kw,
    )


@SETTINGS
@given(
    key=keys,
    token=tokens,
    expires=expiries,
    now=nows,
    ctype=content_types,
    method=st.sampled_from(["GET", "PUT", "HEAD", "DELETE"]),
    params=sub_resources,
    version=st.sampled_from(["v1", "v4"]),
    path_style=st.booleans(),
)
def test_oss2_sign_url(
    sdk: ModuleType,
    key: str,
    token: str | None,
    expires: int,
    now: datetime,
    ctype: str,
    method: str,
    params: dict[str, str],
    version: str,
    path_style: bool,
) -> None:
    headers = {"Content-Type": ctype} if ctype else {}
    theirs = sdk.oss2_sign_url(
        version=version,
        **AUTH,
        token=token,
        endpoint=ENDPOINT,
        bucket=BUCKET,
        key=key,
        method=method,
        expires=expires,
        now=now,
        region=REGION,
        path_style=path_style,
        headers=headers,
        params=params,
    )
    presign = presign_v4 if version == "v4" else presign_v1
    ours = presign(
        _request(
            method,
            key,
            token,
            now,
            expires=expires,
            query=params,
            headers=headers,
            path_style=path_style,
        )
    )
    assert _split(ours.url) == _split(theirs)


@SETTINGS
@given(
    key=keys,
    token=tokens,
    expires=expiries,
    now=nows,
    method=st.sampled_from(["GET", "PUT", "HEAD"]),
    version=st.sampled_from(["v1", "v4"]),
    path_style=st.booleans(),
    fields=st.fixed_dictionaries(
        {},
        optional={
            "response_content_type": st.sampled_from(["text/plain", "a b+c"]),
            "response_content_disposition": st.sampled_from(['attachment; filename="x y"']),
            "version_id": st.sampled_from(["CAEQ+/=1"]),
        },
    ),
)
def test_oss_v2_presign(
    sdk: ModuleType,
    key: str,
    token: str | None,
    expires: int,
    now: datetime,
    method: str,
    version: str,
    path_style: bool,
    fields: dict[str, str],
) -> None:
    if method != "GET":
        fields = {}  # the response-* overrides and versionId belong to GetObject here
    theirs = sdk.oss_v2_presign(
        version=version,
        **AUTH,
        token=token,
        endpoint=ENDPOINT,
        region=REGION,
        bucket=BUCKET,
        key=key,
        method=method,
        expires=expires,
        now=now,
        path_style=path_style,
        fields=fields,
    )
    names = {
        "response_content_type": "response-content-type",
        "version_id": "versionId",
        "response_content_disposition": "response-content-disposition",
    }
    presign = presign_v4 if version == "v4" else presign_v1
    ours = presign(
        _request(
            method,
            key,
            token,
            now,
            expires=expires,
            path_style=path_style,
            query={names[k]: v for k, v in fields.items()},
        )
    )
    if fields:
        assert _split(ours.url) == _split(theirs.url)
    else:
        assert ours.url == theirs.url


@SETTINGS
@given(
    key=keys,
    token=tokens,
    now=nows,
    ctype=content_types,
    params=sub_resources,
    method=st.sampled_from(["GET", "PUT", "POST", "DELETE"]),
    version=st.sampled_from(["v1", "v4"]),
    meta=st.dictionaries(
        st.sampled_from(["X-Oss-Meta-A", "x-oss-meta-b", "X-OSS-Tagging"]),
        st.text(st.sampled_from(list("ab =&ü")), min_size=1, max_size=5),
        max_size=2,
    ),
)
def test_oss2_header_signing(
    sdk: ModuleType,
    key: str,
    token: str | None,
    now: datetime,
    ctype: str,
    params: dict[str, str],
    method: str,
    version: str,
    meta: dict[str, str],
) -> None:
    headers = {**meta, **({"Content-Type": ctype} if ctype else {})}
    theirs = sdk.oss2_sign_header(
        version=version,
        **AUTH,
        token=token,
        bucket=BUCKET,
        key=key,
        method=method,
        now=now,
        region=REGION,
        headers=headers,
        params=params,
    )
    sign = sign_header_v4 if version == "v4" else sign_header_v1
    ours = sign(_request(method, key, token, now, headers=headers, query=params))
    # oss2 writes V4 parameters as ", "-separated: compare the parsed values.
    assert parse_oss_authorization(ours.headers["authorization"]) == parse_oss_authorization(
        theirs["authorization"]
    )
    for name, value in ours.headers.items():
        if name != "authorization":
            assert theirs[name] == value


@SETTINGS
@given(
    key=st.one_of(st.none(), keys),
    token=tokens,
    now=nows,
    ctype=content_types,
    params=sub_resources,
    method=st.sampled_from(["GET", "PUT", "POST"]),
    version=st.sampled_from(["v1", "v4"]),
    extra=st.booleans(),
)
def test_oss_v2_header_signing(
    sdk: ModuleType,
    key: str | None,
    token: str | None,
    now: datetime,
    ctype: str,
    params: dict[str, str],
    method: str,
    version: str,
    extra: bool,
) -> None:
    if version == "v1":
        token = None  # oss-v2 V1 sends the token as an unsigned `security-token` header
        params = {k: v for k, v in params.items() if k != "x-oss-process"}  # not in v2's list
    headers = {"Content-Type": ctype} if ctype else {}
    additional: tuple[str, ...] = ()
    if extra and version == "v4":
        headers |= {"Range": "bytes=0-9", "Host": f"{BUCKET}.{ENDPOINT_HOST}"}
        additional = ("range", "Host")
    url_query = "&".join(f"{_q(k)}={_q(v)}" if v else _q(k) for k, v in params.items())
    theirs = sdk.oss_v2_sign_header(
        version=version,
        **AUTH,
        token=token,
        region=REGION,
        bucket=BUCKET,
        key=key,
        method=method,
        now=now,
        url_query=url_query,
        headers=headers,
        additional_headers=set(additional) or None,
    )
    sign = sign_header_v4 if version == "v4" else sign_header_v1
    ours = sign(
        _request(
            method,
            key or None,
            token,
            now,
            headers=headers,
            query=params,
            additional_headers=additional,
        )
    )
    assert ours.headers["authorization"] == theirs["authorization"]


def _q(text: str) -> str:
    return quote(text, safe="")


@SETTINGS
@given(
    session=st.from_regex(r"[A-Za-z0-9.@_-]{2,64}", fullmatch=True),
    duration=st.integers(900, 43200),
    method=st.sampled_from(["GET", "POST"]),
    policy=st.one_of(st.none(), st.text(min_size=1, max_size=300)),
    token=tokens,
    nonce=st.uuids().map(str),
    now=nows,
)
def test_sdk_core_rpc_assume_role(
    sdk: ModuleType,
    session: str,
    duration: int,
    method: str,
    policy: str | None,
    token: str | None,
    nonce: str,
    now: datetime,
) -> None:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    arn = "acs:ram::1234567890123456:role/satchel player"
    url, to_sign = sdk.sdk_core_rpc_assume_role(
        **AUTH,
        timestamp=stamp,
        nonce=nonce,
        role_arn=arn,
        session_name=session,
        duration=duration,
        policy=policy,
        method=method,
    )
    params = {
        "RoleArn": arn,
        "RoleSessionName": session,
        "DurationSeconds": str(duration),
        "RegionId": "cn-hangzhou",
        "SignatureType": "",
    }
    if policy is not None:
        params["Policy"] = policy
    ours = sign_rpc(
        RpcRequest(method, "AssumeRole", "2015-04-01", _creds(None), now, nonce, params=params)
    )
    assert ours.string_to_sign == to_sign
    assert sorted(ours.query.split("&")) == sorted(url.removeprefix("/?").split("&"))
    del token  # aliyun-python-sdk-core's get_url has no token parameter


@SETTINGS
@given(
    session=st.from_regex(r"[A-Za-z0-9.@_-]{2,64}", fullmatch=True),
    policy=st.one_of(st.none(), st.text(min_size=1, max_size=300)),
    token=tokens,
    duration=st.integers(900, 43200),
    now=nows,
)
def test_tea_sts_acs3_requests_verify(
    sdk: ModuleType,
    session: str,
    policy: str | None,
    token: str | None,
    duration: int,
    now: datetime,
) -> None:
    """alibabacloud-sts20150401 (ACS3, signing every header it sends) verifies as sent."""
    sent = sdk.tea_sts_assume_role(
        **AUTH,
        token=token,
        now=now,
        nonce="n-1",
        role_arn="acs:ram::1:role/satchel",
        session_name=session,
        duration=duration,
        policy=policy,
    )
    creds = _creds(token)
    verified = verify_acs3(
        method=sent["method"],
        path=sent["path"],
        query=sent["query"],
        headers=sent["headers"],
        body=sent["body"],
        now=now,
        lookup=lambda ak: creds if ak == creds.access_key_id else None,
    )
    assert verified.params["RoleSessionName"] == session
    if policy is not None:
        assert verified.params["Policy"] == policy
