"""Verification: sign then verify; tamper with each part and get the right error."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from satchel_server.signing import (
    Acs3Request,
    OssEndpoint,
    OssRequest,
    PostPolicyRequest,
    Reason,
    RpcRequest,
    SigningCredentials,
    VerificationError,
    post_form_v1,
    post_form_v4,
    presign_v1,
    presign_v4,
    sign_acs3,
    sign_header_v1,
    sign_header_v4,
    sign_rpc,
    verify_acs3,
    verify_oss,
    verify_post_form,
    verify_rpc,
)
from satchel_server.signing.post_policy import encode_policy, sign_policy_v1
from satchel_server.signing.timefmt import parse_iso_extended

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
REGION = "cn-hangzhou"
TOKEN = "CAIS/tok+en=" * 60
CREDS = SigningCredentials("STS.satchel", "s3cret", TOKEN)
PLAIN = SigningCredentials("LTAIplain", "plain-secret")
KEY = "players/42/a b+c/../ü.dat"


def lookup(ak: str) -> SigningCredentials | None:
    return {c.access_key_id: c for c in (CREDS, PLAIN)}.get(ak)


def wrong_secret(ak: str) -> SigningCredentials | None:
    creds = lookup(ak)
    return creds and SigningCredentials(ak, "not-the-secret", creds.security_token)


def _request(creds: SigningCredentials = CREDS, **kw: object) -> OssRequest:
    base: dict[str, object] = {
        "method": "PUT",
        "bucket": "bkt",
        "key": KEY,
        "credentials": creds,
        "now": NOW,
        "region": REGION,
        "expires": 600,
        "headers": {"Content-Type": "text/plain"},
        "endpoint": OssEndpoint("oss.example", path_style=True),
    }
    base.update(kw)
    return OssRequest(**base)  # type: ignore[arg-type]


def _verify_url(
    url: str,
    *,
    method: str = "PUT",
    key: str = KEY,
    headers: dict[str, str] | None = None,
    now: datetime = NOW,
    find: Callable[[str], SigningCredentials | None] = lookup,
    region: str = REGION,
) -> None:
    verify_oss(
        method=method,
        bucket="bkt",
        key=key,
        query=urlsplit(url).query,
        headers={"Content-Type": "text/plain"} if headers is None else headers,
        now=now,
        lookup=find,
        region=region,
    )


def _verify_get(headers: dict[str, str]) -> None:
    """Verify a header-signed GET of KEY (no query) as the emulator would."""
    verify_oss(
        method="GET",
        bucket="bkt",
        key=KEY,
        query="",
        headers=headers,
        now=NOW,
        lookup=lookup,
        region=REGION,
    )


def _replace(url: str, name: str, value: str) -> str:
    base, _, query = url.partition("?")
    items = [
        f"{name}={quote(value, safe='')}" if i.split("=")[0] == name else i
        for i in query.split("&")
    ]
    return f"{base}?{'&'.join(items)}"


def _reason(exc: pytest.ExceptionInfo[VerificationError]) -> Reason:
    return exc.value.reason


@pytest.mark.parametrize("presign", [presign_v1, presign_v4])
@pytest.mark.parametrize("creds", [CREDS, PLAIN])
def test_presigned_url_round_trip(
    presign: Callable[[OssRequest], object], creds: SigningCredentials
) -> None:
    url = presign(_request(creds)).url  # type: ignore[attr-defined]
    _verify_url(url)
    _verify_url(url, now=NOW + timedelta(seconds=599))


V4_TAMPER = [
    ("x-oss-expires", "601", Reason.OSS_SIGNATURE_MISMATCH),
    ("x-oss-security-token", TOKEN + "x", Reason.OSS_INVALID_SECURITY_TOKEN),
    ("x-oss-signature", "0" * 64, Reason.OSS_SIGNATURE_MISMATCH),
    ("x-oss-date", "20240506T070810Z", Reason.OSS_SIGNATURE_MISMATCH),
    (
        "x-oss-credential",
        "STS.satchel/20240506/cn-beijing/oss/aliyun_v4_request",
        Reason.OSS_BAD_REGION,
    ),
    (
        "x-oss-credential",
        "STS.other/20240506/cn-hangzhou/oss/aliyun_v4_request",
        Reason.OSS_UNKNOWN_ACCESS_KEY,
    ),
    ("x-oss-expires", "604801", Reason.OSS_BAD_EXPIRES),
]
V1_TAMPER = [
    ("Expires", str(int(NOW.timestamp()) + 601), Reason.OSS_SIGNATURE_MISMATCH),
    ("security-token", TOKEN + "x", Reason.OSS_INVALID_SECURITY_TOKEN),
    ("Signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", Reason.OSS_SIGNATURE_MISMATCH),
    ("OSSAccessKeyId", "nobody", Reason.OSS_UNKNOWN_ACCESS_KEY),
]


@pytest.mark.parametrize(
    ("presign", "name", "value", "reason"),
    [(presign_v4, *t) for t in V4_TAMPER] + [(presign_v1, *t) for t in V1_TAMPER],
)
def test_presigned_url_tampered_query(
    presign: Callable[[OssRequest], object], name: str, value: str, reason: Reason
) -> None:
    url = _replace(presign(_request()).url, name, value)  # type: ignore[attr-defined]
    with pytest.raises(VerificationError) as exc:
        _verify_url(url)
    assert _reason(exc) is reason


@pytest.mark.parametrize("presign", [presign_v1, presign_v4])
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"key": KEY + "x"}, Reason.OSS_SIGNATURE_MISMATCH),
        ({"key": "players/42/a b+c/ü.dat"}, Reason.OSS_SIGNATURE_MISMATCH),  # no ".." folding
        ({"method": "GET"}, Reason.OSS_SIGNATURE_MISMATCH),
        ({"headers": {"Content-Type": "text/html"}}, Reason.OSS_SIGNATURE_MISMATCH),
        ({"find": wrong_secret}, Reason.OSS_SIGNATURE_MISMATCH),
        ({"now": NOW + timedelta(seconds=601)}, Reason.OSS_EXPIRED),
    ],
)
def test_presigned_url_wrong_request(
    presign: Callable[[OssRequest], object], change: dict[str, object], reason: Reason
) -> None:
    url = presign(_request()).url  # type: ignore[attr-defined]
    with pytest.raises(VerificationError) as exc:
        _verify_url(url, **change)  # type: ignore[arg-type]
    assert _reason(exc) is reason
    if reason is Reason.OSS_SIGNATURE_MISMATCH:
        assert exc.value.string_to_sign  # OSS echoes it back
        assert exc.value.code == "SignatureDoesNotMatch"


def test_v4_presign_from_the_future_is_skewed() -> None:
    url = presign_v4(_request()).url
    with pytest.raises(VerificationError) as exc:
        _verify_url(url, now=NOW - timedelta(minutes=16))
    assert _reason(exc) is Reason.OSS_TIME_SKEWED


def test_missing_signature_is_access_denied() -> None:
    with pytest.raises(VerificationError) as exc:
        _verify_url("https://oss.example/bkt/k")
    assert _reason(exc) is Reason.OSS_MISSING_AUTH


@pytest.mark.parametrize("sign", [sign_header_v1, sign_header_v4])
@pytest.mark.parametrize("creds", [CREDS, PLAIN])
def test_header_signing_round_trip_and_tamper(
    sign: Callable[[OssRequest], object], creds: SigningCredentials
) -> None:
    req = _request(creds, query={"partNumber": "1", "uploadId": "u+1"})
    signed = {"Content-Type": "text/plain", **sign(req).headers}  # type: ignore[attr-defined]
    query = "partNumber=1&uploadId=u%2B1"

    def check(**kw: object) -> None:
        args: dict[str, object] = {
            "method": "PUT",
            "bucket": "bkt",
            "key": KEY,
            "query": query,
            "headers": signed,
            "now": NOW,
            "lookup": lookup,
            "region": REGION,
        }
        args.update(kw)
        verify_oss(**args)  # type: ignore[arg-type]

    check()
    check(now=NOW + timedelta(minutes=14))
    cases: list[tuple[dict[str, object], Reason]] = [
        ({"query": "partNumber=2&uploadId=u%2B1"}, Reason.OSS_SIGNATURE_MISMATCH),
        ({"method": "POST"}, Reason.OSS_SIGNATURE_MISMATCH),
        ({"key": KEY.upper()}, Reason.OSS_SIGNATURE_MISMATCH),
        ({"headers": {**signed, "Content-Type": "a/b"}}, Reason.OSS_SIGNATURE_MISMATCH),
        ({"headers": {**signed, "x-oss-meta-new": "1"}}, Reason.OSS_SIGNATURE_MISMATCH),
        ({"lookup": wrong_secret}, Reason.OSS_SIGNATURE_MISMATCH),
        ({"now": NOW + timedelta(minutes=16)}, Reason.OSS_TIME_SKEWED),
        ({"now": NOW - timedelta(minutes=16)}, Reason.OSS_TIME_SKEWED),
    ]
    if creds.security_token:
        cases.append(
            (
                {"headers": {**signed, "x-oss-security-token": "forged"}},
                Reason.OSS_INVALID_SECURITY_TOKEN,
            )
        )
    for change, reason in cases:
        with pytest.raises(VerificationError) as exc:
            check(**change)
        assert _reason(exc) is reason, change


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_sdk_presigned_urls_verify(sdk: ModuleType, version: str) -> None:
    """What the emulator will see from the unmodified SDKs verifies."""
    kw = {
        "version": version,
        "ak": CREDS.access_key_id,
        "sk": "s3cret",
        "token": TOKEN,
        "endpoint": "http://127.0.0.1:9000",
        "bucket": "bkt",
        "key": KEY,
        "method": "GET",
        "expires": 600,
        "now": NOW,
        "path_style": True,
    }
    for url in (
        sdk.oss2_sign_url(region=REGION, **kw),
        sdk.oss_v2_presign(region=REGION, **kw).url,
    ):
        _verify_url(url, method="GET", headers={})


def test_oss2_v4_header_authorization_verifies(sdk: ModuleType) -> None:
    headers = sdk.oss2_sign_header(
        version="v4",
        ak=CREDS.access_key_id,
        sk="s3cret",
        token=TOKEN,
        bucket="bkt",
        key=KEY,
        method="GET",
        now=NOW,
        region=REGION,
    )
    assert ", Signature=" in headers["authorization"]
    _verify_get(headers)


# --- PostObject -----------------------------------------------------------------------------


def _post(creds: SigningCredentials = CREDS, **kw: object) -> PostPolicyRequest:
    base: dict[str, object] = {
        "bucket": "bkt",
        "credentials": creds,
        "now": NOW,
        "expires": 600,
        "key": KEY,
        "content_length_range": (1, 1000),
        "content_type": "image/png",
        "forbid_overwrite": True,
        "region": REGION,
    }
    base.update(kw)
    return PostPolicyRequest(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("make", [post_form_v1, post_form_v4])
@pytest.mark.parametrize("creds", [CREDS, PLAIN])
def test_post_form_round_trip_and_tamper(
    make: Callable[[PostPolicyRequest], object], creds: SigningCredentials
) -> None:
    fields = dict(make(_post(creds)).fields)  # type: ignore[attr-defined]

    def check(length: int = 10, now: datetime = NOW, **changes: str) -> None:
        verify_post_form(
            bucket=changes.pop("bucket", "bkt"),
            fields={**fields, **changes},
            content_length=length,
            now=now,
            lookup=lookup,
            region=REGION,
        )

    check()
    check(length=1000)
    for change, reason in [
        ({"length": 1001}, Reason.OSS_POLICY_CONDITION),
        ({"length": 0}, Reason.OSS_POLICY_CONDITION),
        ({"key": KEY + "x"}, Reason.OSS_POLICY_CONDITION),
        ({"Content-Type": "text/html"}, Reason.OSS_POLICY_CONDITION),
        ({"bucket": "other"}, Reason.OSS_POLICY_CONDITION),
        ({"now": NOW + timedelta(seconds=601)}, Reason.OSS_POLICY_EXPIRED),
        ({"policy": fields["policy"][:-4] + "AAA="}, Reason.OSS_SIGNATURE_MISMATCH),
    ]:
        with pytest.raises(VerificationError) as exc:
            check(**change)  # type: ignore[arg-type]
        assert _reason(exc) is reason, change
    if creds.security_token:
        with pytest.raises(VerificationError) as exc:
            check(**{"x-oss-security-token": "forged"})
        assert _reason(exc) is Reason.OSS_INVALID_SECURITY_TOKEN


def test_post_form_prefix_policy() -> None:
    form = post_form_v4(_post(key=None, key_prefix="players/42/"))
    assert "key" not in form.fields
    fields = {**form.fields, "key": "players/42/new.png"}
    verify_post_form(
        bucket="bkt", fields=fields, content_length=5, now=NOW, lookup=lookup, region=REGION
    )
    with pytest.raises(VerificationError) as exc:
        verify_post_form(
            bucket="bkt",
            fields={**fields, "key": "players/43/x"},
            content_length=5,
            now=NOW,
            lookup=lookup,
            region=REGION,
        )
    assert _reason(exc) is Reason.OSS_POLICY_CONDITION


# --- STS --------------------------------------------------------------------------------------


def _rpc(method: str, creds: SigningCredentials = PLAIN) -> tuple[str, str]:
    body = {"RoleSessionName": "p 42", "Policy": '{"a": "b+c"}'} if method == "POST" else {}
    signed = sign_rpc(
        RpcRequest(
            method,
            "AssumeRole",
            "2015-04-01",
            creds,
            NOW,
            "nonce-1",
            params={"RoleArn": "acs:ram::1:role/r"},
            body_params=body,
        )
    )
    return signed.query, signed.body


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("creds", [CREDS, PLAIN])
def test_rpc_round_trip_and_tamper(method: str, creds: SigningCredentials) -> None:
    query, body = _rpc(method, creds)
    seen: set[str] = set()

    def check(**kw: object) -> None:
        args: dict[str, object] = {
            "method": method,
            "query": query,
            "body": body,
            "now": NOW,
            "lookup": lookup,
        }
        args.update(kw)
        verify_rpc(**args)  # type: ignore[arg-type]

    check()
    check(nonce_seen=lambda n: n in seen or bool(seen.add(n)))
    cases: list[tuple[dict[str, object], Reason]] = [
        ({"nonce_seen": lambda n: n in seen}, Reason.STS_NONCE_USED),
        ({"query": query.replace("role%2Fr", "role%2Fx")}, Reason.STS_SIGNATURE_MISMATCH),
        ({"method": "PUT"}, Reason.STS_SIGNATURE_MISMATCH),
        ({"lookup": wrong_secret}, Reason.STS_SIGNATURE_MISMATCH),
        ({"lookup": lambda ak: None}, Reason.STS_UNKNOWN_ACCESS_KEY),
        ({"now": NOW + timedelta(minutes=16)}, Reason.STS_TIMESTAMP_EXPIRED),
        (
            {"query": query.replace("SignatureMethod=HMAC-SHA1", "SignatureMethod=X")},
            Reason.STS_UNSUPPORTED,
        ),
    ]
    if method == "POST":
        cases.append(({"body": body.replace("p%2042", "p%2043")}, Reason.STS_SIGNATURE_MISMATCH))
    for change, reason in cases:
        with pytest.raises(VerificationError) as exc:
            check(**change)
        assert _reason(exc) is reason, change
        if reason is Reason.STS_SIGNATURE_MISMATCH:
            assert exc.value.string_to_sign is not None


def test_rpc_sdk_request_verifies(sdk: ModuleType) -> None:
    url, _ = sdk.sdk_core_rpc_assume_role(
        ak=PLAIN.access_key_id,
        sk="plain-secret",
        timestamp="2024-05-06T07:08:09Z",
        nonce="n",
        role_arn="acs:ram::1:role/r",
        session_name="s",
    )
    verify_rpc(method="POST", query=url.removeprefix("/?"), body="", now=NOW, lookup=lookup)


@pytest.mark.parametrize("creds", [CREDS, PLAIN])
def test_acs3_round_trip_and_tamper(creds: SigningCredentials) -> None:
    body = b"RoleArn=acs%3Aram%3A%3A1%3Arole%2Fr&RoleSessionName=p42"
    signed = sign_acs3(
        Acs3Request(
            "POST",
            "sts.aliyuncs.com",
            "AssumeRole",
            "2015-04-01",
            creds,
            NOW,
            "nonce-2",
            query={"DurationSeconds": "900"},
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=body,
        )
    )

    def check(**kw: object) -> None:
        args: dict[str, object] = {
            "method": "POST",
            "path": "/",
            "query": "DurationSeconds=900",
            "headers": signed.headers,
            "body": body,
            "now": NOW,
            "lookup": lookup,
        }
        args.update(kw)
        verify_acs3(**args)  # type: ignore[arg-type]

    check()
    for change, reason in [
        ({"query": "DurationSeconds=3600"}, Reason.STS_SIGNATURE_MISMATCH),
        ({"body": body + b"x"}, Reason.STS_SIGNATURE_MISMATCH),
        ({"path": "/x"}, Reason.STS_SIGNATURE_MISMATCH),
        (
            {"headers": {**signed.headers, "x-acs-action": "GetCallerIdentity"}},
            Reason.STS_SIGNATURE_MISMATCH,
        ),
        ({"headers": {**signed.headers, "x-acs-extra": "1"}}, Reason.STS_MISSING),
        ({"lookup": wrong_secret}, Reason.STS_SIGNATURE_MISMATCH),
        ({"now": NOW - timedelta(minutes=16)}, Reason.STS_TIMESTAMP_EXPIRED),
    ]:
        with pytest.raises(VerificationError) as exc:
            check(**change)
        assert _reason(exc) is reason, change


def test_oss_v2_v1_header_with_token_verifies(sdk: ModuleType) -> None:
    """alibabacloud-oss-v2 sends V1's token as an unsigned `security-token` header."""
    headers = sdk.oss_v2_sign_header(
        version="v1",
        ak=CREDS.access_key_id,
        sk="s3cret",
        token=TOKEN,
        region=REGION,
        bucket="bkt",
        key=KEY,
        method="GET",
        now=NOW,
    )
    assert "x-oss-security-token" not in headers
    _verify_get(headers)
    with pytest.raises(VerificationError) as exc:
        verify_oss(
            method="GET",
            bucket="bkt",
            key=KEY,
            query="",
            headers={**headers, "security-token": "forged"},
            now=NOW,
            lookup=lookup,
            region=REGION,
        )
    assert _reason(exc) is Reason.OSS_INVALID_SECURITY_TOKEN


@pytest.mark.parametrize(
    "condition",
    [
        ["content-length-range", "ten", 20],
        ["gt", "$key", "x"],
        ["eq", 5, "x"],
        "bucket",
    ],
)
def test_post_form_malformed_condition(condition: object) -> None:
    policy = encode_policy({"expiration": "2030-01-01T00:00:00.000Z", "conditions": [condition]})
    fields = {
        "OSSAccessKeyId": PLAIN.access_key_id,
        "policy": policy,
        "key": "k",
        "Signature": sign_policy_v1(PLAIN, policy),
    }
    with pytest.raises(VerificationError) as exc:
        verify_post_form(
            bucket="bkt", fields=fields, content_length=1, now=NOW, lookup=lookup, region=REGION
        )
    assert _reason(exc) is Reason.OSS_POLICY_MALFORMED


def test_documented_sts_examples_verify(documented: dict[str, Any]) -> None:
    rpc_doc = documented["rpc_describe_regions"]
    rpc_creds = SigningCredentials(rpc_doc["access_key_id"], rpc_doc["access_key_secret"])
    query = (
        "AccessKeyId=testid&Action=DescribeRegions&Format=XML&SignatureMethod=HMAC-SHA1"
        "&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureVersion=1.0"
        "&Timestamp=2016-02-23T12%3A46%3A24Z&Version=2014-05-26"
        "&Signature=OLeaidS1JvxuMvnyHOwuJ%2BuX5qY%3D"
    )
    verify_rpc(
        method="GET",
        query=query,
        body="",
        lookup=lambda ak: rpc_creds,
        now=parse_iso_extended(rpc_doc["timestamp"]),
    )
    acs = documented["acs3_run_instances"]
    acs_creds = SigningCredentials(acs["access_key_id"], acs["access_key_secret"])
    headers = {
        "host": acs["host"],
        "x-acs-action": acs["action"],
        "x-acs-version": acs["version"],
        "x-acs-date": acs["timestamp"],
        "x-acs-signature-nonce": acs["nonce"],
        "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "Authorization": acs["authorization"],
    }
    verify_acs3(
        method="POST",
        path="/",
        query="ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai",
        headers=headers,
        body=b"",
        now=parse_iso_extended(acs["timestamp"]),
        lookup=lambda ak: acs_creds,
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"now": NOW - timedelta(minutes=16)}, Reason.OSS_TIME_SKEWED),
        ({"now": NOW + timedelta(days=7, seconds=1)}, Reason.OSS_EXPIRED),
        ({"x-oss-date": "20240507T070809Z"}, Reason.OSS_MALFORMED),
        ({"x-oss-date": "yesterday"}, Reason.OSS_MALFORMED),
    ],
)
def test_post_form_v4_dates(change: dict[str, Any], reason: Reason) -> None:
    form = post_form_v4(_post(expires=604800))
    now = change.pop("now", NOW)
    with pytest.raises(VerificationError) as exc:
        verify_post_form(
            bucket="bkt",
            fields={**form.fields, **change},
            content_length=5,
            now=now,
            lookup=lookup,
            region=REGION,
        )
    assert _reason(exc) is reason
