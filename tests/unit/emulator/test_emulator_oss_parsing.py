"""OSS request parsing: addressing, keys, ranges, and the XML documents OSS reads."""

from __future__ import annotations

import pytest

from satchel_server.emulator.errors import OssError
from satchel_server.emulator.oss_addressing import bucket_from_host, parse_target
from satchel_server.emulator.oss_objects import parse_range
from satchel_server.emulator.oss_xml import KeyCodec, iso8601, parse_complete, parse_delete

BUCKETS = {"b1", "satchel-dev"}


@pytest.mark.parametrize(
    ("host", "path", "bucket", "key"),
    [
        ("127.0.0.1:9000", "/b1/a/b.txt", "b1", "a/b.txt"),
        ("127.0.0.1:9000", "/b1/a%2Fb", "b1", "a/b"),
        ("127.0.0.1:9000", "/b1/a/../../etc", "b1", "a/../../etc"),
        ("127.0.0.1:9000", "/b1/a//b", "b1", "a//b"),
        ("127.0.0.1:9000", "/b1/", "b1", None),
        ("127.0.0.1:9000", "/b1", "b1", None),
        ("127.0.0.1:9000", "/", None, None),
        ("[::1]:9000", "/b1/k", "b1", "k"),
        ("b1.oss-cn-hangzhou.aliyuncs.com", "/k%20x", "b1", "k x"),
        ("satchel-dev.localhost:8080", "/", "satchel-dev", None),
        ("other.example.com", "/b1/k", "b1", "k"),
    ],
)
def test_targets(host: str, path: str, bucket: str | None, key: str | None) -> None:
    target = parse_target(host, path, BUCKETS)
    assert (target.bucket, target.key) == (bucket, key)


def test_query_is_decoded_as_form_values() -> None:
    # A space arrives as `+` (oss2, through requests) or `%20`; a plus only as `%2B`.
    target = parse_target("127.0.0.1", "/b1/k?uploadId=AB&prefix=a+b%2Bc%20d&uploads", BUCKETS)
    assert target.param("prefix") == "a b+c d"
    assert target.has("uploads")
    assert target.param("missing") is None


def test_key_length_in_bytes() -> None:
    assert parse_target("127.0.0.1", "/b1/" + "é" * 511 + "x", BUCKETS).key
    with pytest.raises(OssError) as info:
        parse_target("127.0.0.1", "/b1/" + "é" * 512, BUCKETS)
    assert info.value.code == "InvalidObjectName"


def test_invalid_utf8_key() -> None:
    with pytest.raises(OssError):
        parse_target("127.0.0.1", "/b1/%FF", BUCKETS)


def test_bucket_from_host() -> None:
    assert bucket_from_host("127.0.0.1:1", BUCKETS) is None
    assert bucket_from_host("localhost:1", BUCKETS) is None
    assert bucket_from_host("B1.host", BUCKETS) == "b1"


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-3", (0, 3)),
        ("bytes=2-", (2, 9)),
        ("bytes=-4", (6, 9)),
        ("bytes=5-100", (5, 9)),
        ("bytes=3-1", None),
        ("items=0-1", None),
        ("bytes=0-1,3-4", None),
        ("bytes=x-y", None),
        ("bytes=-0", None),
    ],
)
def test_ranges(header: str, span: tuple[int, int] | None) -> None:
    assert parse_range(header, 10) == span


def test_unsatisfiable_range() -> None:
    with pytest.raises(OssError) as info:
        parse_range("bytes=10-", 10)
    assert info.value.code == "InvalidRange"


def test_parse_complete_and_delete() -> None:
    body = (
        b'<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"A"</ETag></Part>'
        b"<Part><PartNumber>2</PartNumber><ETag>B</ETag></Part></CompleteMultipartUpload>"
    )
    assert parse_complete(body) == [(1, '"A"'), (2, "B")]
    keys, quiet = parse_delete(
        b"<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object>"
        b"<Object><Key>b&amp;c</Key></Object></Delete>"
    )
    assert (keys, quiet) == (["a", "b&c"], True)


@pytest.mark.parametrize(
    "body",
    [
        b"not xml",
        b"<Other/>",
        b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>A</ETag></Part>"
        b"</CompleteMultipartUpload>",
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><CompleteMultipartUpload/>',
    ],
)
def test_malformed_complete(body: bytes) -> None:
    with pytest.raises(OssError) as info:
        parse_complete(body)
    assert info.value.code == "MalformedXML"


@pytest.mark.parametrize("body", [b"<Delete/>", b"<Delete><Object><Key></Key></Object></Delete>"])
def test_malformed_delete(body: bytes) -> None:
    with pytest.raises(OssError):
        parse_delete(body)


def test_xml_formats() -> None:
    assert iso8601(0.9) == "1970-01-01T00:00:00.000Z"
    assert KeyCodec("url")("a b/ü") == "a%20b/%C3%BC"
    assert KeyCodec("")("a b") == "a b"
