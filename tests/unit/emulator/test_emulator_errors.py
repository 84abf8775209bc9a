"""Error tables and their one rendering."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from satchel_server.emulator.errors import (
    OSS_ERRORS,
    STS_ERRORS,
    OssError,
    StsError,
    render_oss_error,
    render_sts_error,
)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AccessDenied", 403),
        ("SignatureDoesNotMatch", 403),
        ("InvalidAccessKeyId", 403),
        ("SecurityTokenExpired", 403),
        ("NoSuchKey", 404),
        ("NoSuchBucket", 404),
        ("InvalidObjectName", 400),
        ("EntityTooLarge", 400),
        ("FileAlreadyExists", 409),
    ],
)
def test_oss_statuses(code: str, status: int) -> None:
    assert OSS_ERRORS[code].status == status


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("Throttling.User", 400),
        ("NoPermission", 403),
        ("EntityNotExist.Role", 404),
        ("InvalidAccessKeyId.NotFound", 404),
        ("InternalError", 500),
    ],
)
def test_sts_statuses(code: str, status: int) -> None:
    assert STS_ERRORS[code].status == status


def test_oss_xml_with_string_to_sign() -> None:
    err = OssError("SignatureDoesNotMatch", extra={"StringToSign": "GET\n\n\n<&>"})
    out = render_oss_error(err, "RID", "b.host")
    assert out.status == 403
    root = ET.fromstring(out.body)
    assert root.tag == "Error"
    assert root.findtext("Code") == "SignatureDoesNotMatch"
    assert root.findtext("RequestId") == "RID"
    assert root.findtext("HostId") == "b.host"
    assert root.findtext("StringToSign") == "GET\n\n\n<&>"


def test_sts_json_and_xml() -> None:
    err = StsError("Throttling.User")
    js = render_sts_error(err, "RID", "sts.host", "JSON")
    body = json.loads(js.body)
    assert js.status == 400
    assert body["Code"] == "Throttling.User"
    assert body["RequestId"] == "RID"
    assert body["HostId"] == "sts.host"
    assert body["Message"]
    xml = render_sts_error(StsError("NoPermission", "custom"), "RID", "h", "xml")
    root = ET.fromstring(xml.body)
    assert xml.status == 403
    assert root.findtext("Code") == "NoPermission"
    assert root.findtext("Message") == "custom"


def test_every_code_renders() -> None:
    for code in OSS_ERRORS:
        assert render_oss_error(OssError(code), "r", "h").status >= 400
    for code in STS_ERRORS:
        assert render_sts_error(StsError(code), "r", "h", "JSON").status >= 400


def test_codes_from_elsewhere_keep_their_status() -> None:
    # The signing core's verification table names codes (and statuses) of its own.
    out = render_sts_error(
        StsError("InvalidSecurityToken.Malformed", "m", status=400), "r", "h", ""
    )
    assert out.status == 400
    assert json.loads(out.body)["Code"] == "InvalidSecurityToken.Malformed"
    oss = render_oss_error(OssError("AccessDenied", "Request has expired.", status=403), "r", "h")
    assert oss.status == 403
    assert ET.fromstring(oss.body).findtext("Message") == "Request has expired."
