"""Log lines: one JSON object each, with the request id, and never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satchel_server.observability import logs

TOKEN = "CAIS" + "q1w2E3r4T5y6U7i8O9p0" * 40  # shaped like an STS security token
SECRET = "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy"
PRESIGNED = (
    "https://bkt.oss-cn-hangzhou.aliyuncs.com/players/p1/save.dat?x-oss-signature-version="
    "OSS4-HMAC-SHA256&x-oss-date=20261128T120000Z&x-oss-expires=900&x-oss-credential="
    "STS.abc%2F20261128%2Fcn-hangzhou%2Foss%2Faliyun_v4_request&x-oss-security-token=CAISxyz"
    "&x-oss-signature=0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"GET {PRESIGNED} failed", "0f1e2d3c4b5a6978"),
        (f"GET {PRESIGNED} failed", "CAISxyz"),
        (f"token={TOKEN}", TOKEN[:40]),
        (f'{{"AccessKeySecret": "{SECRET}"}}', SECRET),
        (f"{{'SecurityToken': '{TOKEN}'}}", TOKEN[:40]),
        (f"AccessKeySecret={SECRET}&x=1", SECRET),
        (f"access_key_secret='{SECRET}'", SECRET),
        (f"authorization: Bearer sat_k1_{SECRET}", SECRET),
        ("Authorization: bearer sk_live_4f9a2c", "sk_live_4f9a2c"),
        ("bearer ABCDEFGHIJKLMNOPQRSTuvwx", "ABCDEFGHIJKLMNOPQRSTuvwx"),
        (f"Authorization: OSS STS.abc:{SECRET}=", SECRET),
        (
            "OSS4-HMAC-SHA256 Credential=STS.a/20261128/cn-hangzhou/oss/aliyun_v4_request,"
            f"Signature={SECRET}",
            SECRET,
        ),
        (f"Signature={SECRET}&SignatureNonce=1", SECRET),
        (f"bare token {TOKEN} in prose", TOKEN[:40]),
        # An Authorization header's value is a credential whatever its shape.
        ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ('"authorization": "Basic dXNlcjpwYXNz"', "dXNlcjpwYXNz"),
        # Secret-bearing names followed by a colon and a bare value (headers, YAML, reprs).
        (f"AccessKeySecret: {SECRET}", SECRET),
        ("x-acs-security-token: CAISabc123", "CAISabc123"),
        ("OIDCToken=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "eyJzdWIiOiJ4In0"),
    ],
)
def test_scrub_removes_every_secret_shape(text: str, secret: str) -> None:
    scrubbed = logs.scrub(text)
    assert secret not in scrubbed
    assert logs.REDACTED in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "satchel listening on 127.0.0.1:50051",
        "scope saves: signer credentials STS.NUgYrLnoC36mbNdzvEdX valid until 2026-11-28",
        "STS answered HTTP 400 Throttling.User (RequestId 7EA4F40C036284231C9BA2FE)",
        "player_id: must not contain '*'",
        "bearer keys travel in plaintext",
        "the bearer key is sent in plaintext to game.example:443: pass tls=Tls(...)",
        "Bearer token-based authentication is on",
        "OSS answered SignatureDoesNotMatch: check the secret",
        "the session policy: 812 characters",
    ],
)
def test_scrub_keeps_what_operators_need(text: str) -> None:
    assert logs.scrub(text) == text


_TOKEN68 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"


@given(
    st.sampled_from(["Bearer", "bearer", "BEARER"]),
    st.text(_TOKEN68, min_size=20, max_size=80) | st.from_regex(r"\A(sat|sk)_[a-z0-9_]{6,40}\Z"),
)
def test_every_bearer_credential_shape_is_redacted(word: str, credential: str) -> None:
    scrubbed = logs.scrub(f"authorization: {word} {credential}")
    assert scrubbed == f"authorization: {word} {logs.REDACTED}"


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """configure() replaces the root handlers; give pytest's own back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def capture(json_lines: bool) -> tuple[io.StringIO, logging.Logger]:
    stream = io.StringIO()
    logs.configure("DEBUG", json_lines=json_lines, stream=stream)
    return stream, logging.getLogger("satchel.test")


def test_json_lines_carry_time_level_logger_request_id_and_message() -> None:
    stream, logger = capture(json_lines=True)
    token = logs.request_id_var.set("req-42")
    try:
        logger.info("issued %s", "STS.public-id")
    finally:
        logs.request_id_var.reset(token)
    entry = json.loads(stream.getvalue())
    assert entry["level"] == "INFO"
    assert entry["logger"] == "satchel.test"
    assert entry["request_id"] == "req-42"
    assert entry["message"] == "issued STS.public-id"
    assert entry["time"].endswith("+00:00")


def test_exception_text_is_scrubbed_too() -> None:
    stream, logger = capture(json_lines=True)
    try:
        raise RuntimeError(f"upstream said {PRESIGNED}")
    except RuntimeError:
        logger.exception("request failed")
    line = stream.getvalue()
    assert "x-oss-signature=0f1e" not in line
    assert "RuntimeError" in json.loads(line)["exception"]


def test_library_loggers_go_through_the_same_scrubbing_handler() -> None:
    stream, _ = capture(json_lines=False)
    logging.getLogger("aiohttp.client").warning("redirect to %s", PRESIGNED)
    assert "CAISxyz" not in stream.getvalue()
    assert "aiohttp.client" in stream.getvalue()
