"""Headers a V4 signature lists as additional must be sent, with the value signed.

OSS refuses a request that lacks a listed header (InvalidArgument) and one whose value
differs (SignatureDoesNotMatch): a URL that signs ``content-length`` takes one size only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satchel_server.signing import (
    OssEndpoint,
    OssRequest,
    Reason,
    SigningCredentials,
    VerificationError,
    parse_oss_authorization,
    parse_oss_query,
    presign_v4,
    verify_oss,
)

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
REGION = "cn-hangzhou"
CREDS = SigningCredentials("STS.satchel", "s3cret", "tok" * 50)
KEY = "players/42/save.dat"
SIZES = st.integers(min_value=0, max_value=5 * 1024**3)


def _url(size: int) -> str:
    request = OssRequest(
        method="PUT",
        bucket="bkt",
        key=KEY,
        credentials=CREDS,
        now=NOW,
        region=REGION,
        expires=600,
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        additional_headers=("content-length",),
        endpoint=OssEndpoint("oss.example", path_style=True),
    )
    return presign_v4(request).url


def _verify(url: str, headers: dict[str, str]) -> None:
    verify_oss(
        method="PUT",
        bucket="bkt",
        key=KEY,
        query=urlsplit(url).query,
        headers={"Content-Type": "application/octet-stream", **headers},
        now=NOW,
        lookup={CREDS.access_key_id: CREDS}.get,
        region=REGION,
    )


def test_the_url_lists_content_length() -> None:
    assert "x-oss-additional-headers=content-length" in _url(5)


@settings(deadline=None)  # timing varies on a loaded machine
@given(signed=SIZES, sent=SIZES)
def test_only_the_signed_size_is_accepted(signed: int, sent: int) -> None:
    url = _url(signed)
    if sent == signed:
        _verify(url, {"Content-Length": str(sent)})
        return
    with pytest.raises(VerificationError) as refused:
        _verify(url, {"Content-Length": str(sent)})
    assert refused.value.reason is Reason.OSS_SIGNATURE_MISMATCH


@settings(deadline=None)  # timing varies on a loaded machine
@given(signed=SIZES)
def test_a_listed_header_that_is_absent_is_refused_before_the_signature(signed: int) -> None:
    with pytest.raises(VerificationError) as refused:
        _verify(_url(signed), {"Transfer-Encoding": "chunked"})
    assert refused.value.reason is Reason.OSS_BAD_ADDITIONAL_HEADER
    assert refused.value.code == "InvalidArgument"
    assert refused.value.status == 400
    assert "content-length" in refused.value.detail


@pytest.mark.parametrize("names", ["", "host;", ";host", "x_y", "host; range"])
def test_malformed_additional_header_lists_are_refused(names: str) -> None:
    query = {
        "x-oss-signature-version": "OSS4-HMAC-SHA256",
        "x-oss-credential": f"AK/20240506/{REGION}/oss/aliyun_v4_request",
        "x-oss-date": "20240506T070809Z",
        "x-oss-expires": "60",
        "x-oss-additional-headers": names,
        "x-oss-signature": "00",
    }
    with pytest.raises(VerificationError) as refused:
        parse_oss_query(query)
    assert refused.value.reason is Reason.OSS_BAD_ADDITIONAL_HEADER
    header = (
        f"OSS4-HMAC-SHA256 Credential=AK/20240506/{REGION}/oss/aliyun_v4_request,"
        f"AdditionalHeaders={names},Signature=00"
    )
    with pytest.raises(VerificationError) as refused:
        parse_oss_authorization(header)
    assert refused.value.reason is Reason.OSS_BAD_ADDITIONAL_HEADER
