"""Bad input -> SigningError naming field and rule; secrets never leak; the V4 key cache."""

from __future__ import annotations

import copy
import hashlib
import hmac
import pickle
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from satchel_server.signing import (
    Acs3Request,
    OssEndpoint,
    OssRequest,
    PostPolicyRequest,
    RpcRequest,
    SigningCredentials,
    SigningError,
    V4KeyCache,
    post_form_v4,
    presign_v1,
    presign_v4,
    sign_acs3,
    sign_header_v4,
    sign_rpc,
)
from satchel_server.signing.encoding import pct, pct_path
from satchel_server.signing.keys import Mac

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
SECRET, TOKEN = "very-secret-value", "very-secret-token"
CREDS = SigningCredentials("AKID", SECRET, TOKEN)


def _req(**kw: Any) -> OssRequest:
    base: dict[str, Any] = {
        "method": "GET",
        "bucket": "bkt",
        "key": "k",
        "credentials": CREDS,
        "now": NOW,
        "region": "cn-hangzhou",
        "endpoint": OssEndpoint("oss.example"),
    }
    base.update(kw)
    return OssRequest(**base)


def _error(call: Callable[[], object]) -> SigningError:
    with pytest.raises(SigningError) as exc:
        call()
    assert isinstance(exc.value, ValueError)
    assert SECRET not in str(exc.value)
    assert TOKEN not in str(exc.value)
    return exc.value


@pytest.mark.parametrize(
    "call",
    [
        lambda: presign_v4(_req(region=None)),
        lambda: sign_header_v4(_req(region="")),
        lambda: post_form_v4(PostPolicyRequest("bkt", CREDS, NOW, 60, key="k")),
    ],
)
def test_v4_without_region(call: Callable[[], object]) -> None:
    err = _error(call)
    assert (err.field, err.rule) == ("region", "is required for OSS V4 signatures")


@pytest.mark.parametrize("expires", [0, -1, 604801, 10**9])
@pytest.mark.parametrize("presign", [presign_v1, presign_v4])
def test_expiry_out_of_range(presign: Callable[[OssRequest], object], expires: int) -> None:
    err = _error(lambda: presign(_req(expires=expires)))
    assert err.field == "expires"
    assert "1..604800" in err.rule


@pytest.mark.parametrize("expires", [1.5, True, "60"])
def test_expiry_not_an_int(expires: object) -> None:
    assert _error(lambda: presign_v4(_req(expires=expires))).field == "expires"


def test_expiry_bounds_are_inclusive() -> None:
    assert "x-oss-expires=1&" in presign_v4(_req(expires=1)).url
    assert "x-oss-expires=604800&" in presign_v4(_req(expires=604800)).url


@pytest.mark.parametrize("key", [b"\xff\xfe", "bad\ud800surrogate", b"a\xc3"])
def test_key_not_utf8(key: str | bytes) -> None:
    err = _error(lambda: _req(key=key))
    assert (err.field, err.rule) == ("key", "must be valid UTF-8")


@pytest.mark.parametrize("key", ["x" * 1024, "中" * 342])
def test_key_too_long(key: str) -> None:
    err = _error(lambda: _req(key=key))
    assert err.field == "key"
    assert "1023 bytes" in err.rule


def test_key_limit_and_bytes_keys() -> None:
    presign_v4(_req(key="x" * 1023))
    assert presign_v4(_req(key="ü/k".encode())).url == presign_v4(_req(key="ü/k")).url


@pytest.mark.parametrize("presign", [presign_v1, presign_v4])
@pytest.mark.parametrize("key", [None, ""])
def test_object_url_needs_a_key(presign: Callable[[OssRequest], object], key: str | None) -> None:
    assert _error(lambda: presign(_req(key=key))).field == "key"


def test_keys_are_not_normalised() -> None:
    url = presign_v4(_req(key="a/./b/../c//d", endpoint=OssEndpoint("h", path_style=True))).url
    assert url.startswith("https://h/bkt/a/./b/../c//d?")


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"now": datetime(2024, 1, 1)}, "now"),
        ({"method": "get"}, "method"),
        ({"bucket": ""}, "bucket"),
        ({"bucket": "Bad_Bucket"}, "bucket"),
        ({"bucket": "-ab"}, "bucket"),
        ({"query": {"x-oss-signature": "x"}}, "query"),
        ({"endpoint": None}, "endpoint"),
    ],
)
def test_other_oss_inputs(kw: dict[str, Any], field: str) -> None:
    assert _error(lambda: presign_v4(_req(**kw))).field == field


def test_v1_reserved_query() -> None:
    assert _error(lambda: presign_v1(_req(query={"Signature": "x"}))).field == "query"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", SECRET), "access_key_id"),
        (("AK", ""), "access_key_secret"),
        (("AK", SECRET, ""), "security_token"),
    ],
)
def test_bad_credentials(args: tuple[str, ...], field: str) -> None:
    assert _error(lambda: SigningCredentials(*args)).field == field


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"method": "PUT"}, "method"),
        ({"action": ""}, "action"),
        ({"nonce": ""}, "nonce"),
        ({"body_params": {"a": "b"}}, "body_params"),
        ({"timestamp": datetime(2024, 1, 1)}, "timestamp"),
        ({"params": {"Signature": "x"}}, "params"),
    ],
)
def test_bad_rpc_inputs(kw: dict[str, Any], field: str) -> None:
    base: dict[str, Any] = {
        "method": "GET",
        "action": "AssumeRole",
        "version": "2015-04-01",
        "credentials": CREDS,
        "timestamp": NOW,
        "nonce": "n",
    }
    base.update(kw)
    assert _error(lambda: sign_rpc(RpcRequest(**base))).field == field


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"key": None}, "key"),
        ({"key_prefix": "p/"}, "key"),
        ({"content_length_range": (10, 1)}, "content_length_range"),
        ({"expires": 0}, "expires"),
        ({"bucket": "a"}, "bucket"),
    ],
)
def test_bad_post_policy(kw: dict[str, Any], field: str) -> None:
    base: dict[str, Any] = {
        "bucket": "bkt",
        "credentials": CREDS,
        "now": NOW,
        "expires": 60,
        "key": "k",
        "region": "r",
    }
    base.update(kw)
    assert _error(lambda: PostPolicyRequest(**base)).field == field


def test_secrets_stay_out_of_reprs() -> None:
    for text in (repr(CREDS), str(CREDS), repr(_req()), repr(presign_v4(_req()))):
        assert SECRET not in text
    presigned = presign_v4(_req())
    signature = presigned.url.rsplit("x-oss-signature=", 1)[1]
    headers = sign_header_v4(_req())
    authorization = headers.headers["authorization"]
    form = post_form_v4(PostPolicyRequest("bkt", CREDS, NOW, 60, key="k", region="cn-hangzhou"))
    rpc = sign_rpc(
        RpcRequest("GET", "AssumeRole", "2015-04-01", credentials=CREDS, timestamp=NOW, nonce="n")
    )
    acs3 = sign_acs3(
        Acs3Request("POST", "sts.example", "AssumeRole", "2015-04-01", CREDS, NOW, "n")
    )
    for output, secrets in (
        (presigned, (signature, CREDS.encoded_security_token)),
        (headers, (authorization, TOKEN)),
        (form, (form.fields["x-oss-signature"], TOKEN)),
        (rpc, (rpc.signature, TOKEN)),
        (acs3, (acs3.signature, TOKEN)),
    ):
        for secret in secrets:
            assert secret not in repr(output)
    assert TOKEN not in repr(CREDS)
    assert TOKEN not in repr(_req())
    assert CREDS.encoded_security_token == TOKEN  # memoised, still not in repr
    assert "encoded_security_token" not in repr(CREDS)


def test_encoding_rules() -> None:
    assert pct("a b*~+/=&") == "a%20b%2A~%2B%2F%3D%26"
    assert pct_path("/b/a b*~/x") == "/b/a%20b%2A~/x"


def test_v4_key_cache_per_day_region_and_secret() -> None:
    cache = V4KeyCache()
    first = cache.get(CREDS, "20240506", "cn-hangzhou", "oss")
    assert cache.get(CREDS, "20240506", "cn-hangzhou", "oss") is first
    assert cache.get(CREDS, "20240506", "cn-beijing", "oss") is not first
    assert len(cache) == 2
    rotated = SigningCredentials("AKID", "rotated", TOKEN)
    assert cache.get(rotated, "20240506", "cn-hangzhou", "oss").mac.digest(
        b"x"
    ) != first.mac.digest(b"x")
    cache.get(CREDS, "20240507", "cn-hangzhou", "oss")  # the day changes: old keys dropped
    assert len(cache) == 1
    assert cache.day == "20240507"
    cache.get(CREDS, "20240506", "cn-hangzhou", "oss")  # a stale day does not evict today
    assert len(cache) == 1
    assert cache.day == "20240507"


def test_presign_uses_the_given_cache() -> None:
    cache = V4KeyCache()
    url = presign_v4(_req(), cache)
    assert len(cache) == 1
    assert presign_v4(_req(now=NOW + timedelta(days=1)), cache).url != url
    assert cache.day == "20240507"


@pytest.mark.parametrize("creds", [CREDS, SigningCredentials("AKID", SECRET)])
def test_v4_presign_fast_path_equals_general_path(creds: SigningCredentials) -> None:
    """An unsigned header sends presign_v4 down the general path; the URL must not change."""
    fast = presign_v4(_req(credentials=creds))
    general = presign_v4(_req(credentials=creds, headers={"User-Agent": "x"}))
    assert fast.url == general.url
    assert fast.string_to_sign == general.string_to_sign


def test_mac_matches_hmac() -> None:
    for key in (b"", b"k", b"x" * 64, b"y" * 200):
        for algorithm in ("sha1", "sha256"):
            expected = hmac.new(key, b"message", getattr(hashlib, algorithm)).digest()
            assert Mac(key, algorithm).digest(b"message") == expected
            assert "x" not in repr(Mac(key, algorithm))


def test_credentials_copy_after_use() -> None:
    creds = SigningCredentials("AKID", SECRET, TOKEN)
    presign_v4(_req(credentials=creds))  # memoises hash states on the instance
    for clone in (copy.copy(creds), copy.deepcopy(creds), pickle.loads(pickle.dumps(creds))):
        assert clone == creds
        assert presign_v4(_req(credentials=clone)).url == presign_v4(_req(credentials=creds)).url
