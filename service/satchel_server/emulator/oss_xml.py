"""OSS's XML bodies: the result documents it answers and the request documents it reads.

Element names and order follow the OSS API reference, which is what the SDKs' parsers expect.
With `encoding-type=url`, key-like fields are percent-encoded (the SDKs decode them).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote
from xml.sax.saxutils import escape

from satchel_server.emulator.accounts import CorsRule
from satchel_server.emulator.errors import OssError
from satchel_server.emulator.store import ListResult, ObjectMeta, PartInfo, Upload

_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
OWNER_ID = "1234567890123456"


def iso8601(epoch: float) -> str:
    """`2026-01-02T03:04:05.000Z`: OSS keeps whole seconds, and oss2 accepts only `.000Z`."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(int(epoch), UTC), usegmt=True)


def _el(name: str, value: str | int | bool) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>"


def _doc(root: str, parts: Iterable[str]) -> bytes:
    return (_DECL + f"<{root}>" + "".join(parts) + f"</{root}>").encode()


class KeyCodec:
    """Applies `encoding-type=url` to key-like values (or leaves them raw)."""

    def __init__(self, encoding_type: str) -> None:
        self.url = encoding_type == "url"

    def __call__(self, value: str) -> str:
        return quote(value, safe="/") if self.url else value


def _contents(obj: ObjectMeta, enc: KeyCodec, owner: bool) -> str:
    parts = [
        _el("Key", enc(obj.key)),
        _el("LastModified", iso8601(obj.last_modified)),
        _el("ETag", obj.etag),
        _el("Type", obj.object_type),
        _el("Size", obj.size),
        _el("StorageClass", "Standard"),
    ]
    if owner:
        parts.append(f"<Owner>{_el('ID', OWNER_ID)}{_el('DisplayName', OWNER_ID)}</Owner>")
    return "<Contents>" + "".join(parts) + "</Contents>"


def _prefixes(result: ListResult, enc: KeyCodec) -> list[str]:
    return [
        f"<CommonPrefixes>{_el('Prefix', enc(p))}</CommonPrefixes>" for p in result.common_prefixes
    ]


def list_v1(
    bucket: str,
    result: ListResult,
    *,
    prefix: str,
    marker: str,
    delimiter: str,
    max_keys: int,
    enc: KeyCodec,
) -> bytes:
    parts = [
        _el("Name", bucket),
        _el("Prefix", enc(prefix)),
        _el("Marker", enc(marker)),
        _el("MaxKeys", max_keys),
        _el("Delimiter", enc(delimiter)),
    ]
    if enc.url:
        parts.append(_el("EncodingType", "url"))
    parts.append(_el("IsTruncated", result.is_truncated))
    if result.is_truncated:
        parts.append(_el("NextMarker", enc(result.next_marker)))
    parts += [_contents(obj, enc, owner=True) for obj in result.objects]
    parts += _prefixes(result, enc)
    return _doc("ListBucketResult", parts)


def list_v2(
    bucket: str,
    result: ListResult,
    *,
    prefix: str,
    start_after: str,
    token: str,
    next_token: str,
    delimiter: str,
    max_keys: int,
    fetch_owner: bool,
    enc: KeyCodec,
) -> bytes:
    parts = [_el("Name", bucket), _el("Prefix", enc(prefix))]
    if start_after:
        parts.append(_el("StartAfter", enc(start_after)))
    if token:
        parts.append(_el("ContinuationToken", token))
    parts += [_el("MaxKeys", max_keys), _el("Delimiter", enc(delimiter))]
    if enc.url:
        parts.append(_el("EncodingType", "url"))
    parts.append(_el("IsTruncated", result.is_truncated))
    if result.is_truncated:
        parts.append(_el("NextContinuationToken", next_token))
    parts.append(_el("KeyCount", len(result.objects) + len(result.common_prefixes)))
    parts += [_contents(obj, enc, owner=fetch_owner) for obj in result.objects]
    parts += _prefixes(result, enc)
    return _doc("ListBucketResult", parts)


def initiate_result(bucket: str, upload: Upload, enc: KeyCodec) -> bytes:
    parts = [_el("Bucket", bucket), _el("Key", enc(upload.key)), _el("UploadId", upload.upload_id)]
    if enc.url:
        parts.insert(0, _el("EncodingType", "url"))
    return _doc("InitiateMultipartUploadResult", parts)


def complete_result(bucket: str, meta: ObjectMeta, location: str, enc: KeyCodec) -> bytes:
    parts = [
        _el("Location", location),
        _el("Bucket", bucket),
        _el("Key", enc(meta.key)),
        _el("ETag", meta.etag),
    ]
    if enc.url:
        parts.insert(0, _el("EncodingType", "url"))
    return _doc("CompleteMultipartUploadResult", parts)


def list_parts_result(
    bucket: str,
    upload: Upload,
    parts: Sequence[PartInfo],
    *,
    marker: int,
    max_parts: int,
    truncated: bool,
    enc: KeyCodec,
) -> bytes:
    body = [
        _el("Bucket", bucket),
        _el("Key", enc(upload.key)),
        _el("UploadId", upload.upload_id),
        _el("PartNumberMarker", marker),
        _el("NextPartNumberMarker", parts[-1].number if parts else marker),
        _el("MaxParts", max_parts),
        _el("IsTruncated", truncated),
    ]
    if enc.url:
        body.insert(0, _el("EncodingType", "url"))
    body += [
        "<Part>"
        + _el("PartNumber", p.number)
        + _el("LastModified", iso8601(p.last_modified))
        + _el("ETag", p.etag)
        + _el("Size", p.size)
        + "</Part>"
        for p in parts
    ]
    return _doc("ListPartsResult", body)


def list_uploads_result(
    bucket: str, uploads: Sequence[Upload], *, prefix: str, max_uploads: int, enc: KeyCodec
) -> bytes:
    body = [
        _el("Bucket", bucket),
        _el("KeyMarker", ""),
        _el("UploadIdMarker", ""),
        _el("NextKeyMarker", ""),
        _el("NextUploadIdMarker", ""),
        _el("Delimiter", ""),
        _el("Prefix", enc(prefix)),
        _el("MaxUploads", max_uploads),
        _el("IsTruncated", False),
    ]
    if enc.url:
        body.insert(0, _el("EncodingType", "url"))
    body += [
        "<Upload>"
        + _el("Key", enc(u.key))
        + _el("UploadId", u.upload_id)
        + _el("Initiated", iso8601(u.initiated))
        + "</Upload>"
        for u in uploads
    ]
    return _doc("ListMultipartUploadsResult", body)


def copy_result(meta: ObjectMeta) -> bytes:
    return _doc(
        "CopyObjectResult",
        [_el("ETag", meta.etag), _el("LastModified", iso8601(meta.last_modified))],
    )


def copy_part_result(part: PartInfo) -> bytes:
    return _doc(
        "CopyPartResult",
        [_el("LastModified", iso8601(part.last_modified)), _el("ETag", part.etag)],
    )


def delete_result(deleted: Sequence[str], enc: KeyCodec) -> bytes:
    parts = [_el("EncodingType", "url")] if enc.url else []
    parts += [f"<Deleted>{_el('Key', enc(key))}</Deleted>" for key in deleted]
    return _doc("DeleteResult", parts)


def acl_result(acl: str) -> bytes:
    owner = f"<Owner>{_el('ID', OWNER_ID)}{_el('DisplayName', OWNER_ID)}</Owner>"
    grant = f"<AccessControlList>{_el('Grant', acl)}</AccessControlList>"
    return _doc("AccessControlPolicy", [owner, grant])


def tagging_result(tags: Mapping[str, str]) -> bytes:
    items = "".join(f"<Tag>{_el('Key', k)}{_el('Value', v)}</Tag>" for k, v in tags.items())
    return _doc("Tagging", [f"<TagSet>{items}</TagSet>"])


def post_result(bucket: str, meta: ObjectMeta, location: str) -> bytes:
    return _doc(
        "PostResponse",
        [
            _el("Bucket", bucket),
            _el("Location", location),
            _el("Key", meta.key),
            _el("ETag", meta.etag),
        ],
    )


def _parse(body: bytes, root: str) -> ET.Element:
    # No DTDs at all: no entity expansion, no external entities (the body is also capped).
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise OssError("MalformedXML")
    try:
        element = ET.fromstring(body)  # noqa: S314 (DTDs refused above)
    except ET.ParseError as exc:
        raise OssError("MalformedXML") from exc
    if element.tag != root:
        raise OssError("MalformedXML")
    return element


def parse_complete(body: bytes) -> list[tuple[int, str]]:
    """`<CompleteMultipartUpload><Part><PartNumber/><ETag/></Part>…` → [(number, etag)]."""
    parts: list[tuple[int, str]] = []
    for part in _parse(body, "CompleteMultipartUpload").findall("Part"):
        number, etag = part.findtext("PartNumber"), part.findtext("ETag")
        if number is None or etag is None or not number.strip().isdigit():
            raise OssError("MalformedXML")
        parts.append((int(number), etag.strip()))
    return parts


def parse_tagging(body: bytes) -> list[tuple[str, str]]:
    """`<Tagging><TagSet><Tag><Key/><Value/></Tag>…` → [(key, value)] (unchecked)."""
    tag_set = _parse(body, "Tagging").find("TagSet")
    if tag_set is None:
        raise OssError("MalformedXML")
    pairs = []
    for tag in tag_set.findall("Tag"):
        key = tag.findtext("Key")
        if key is None:
            raise OssError("MalformedXML")
        pairs.append((key, tag.findtext("Value") or ""))
    return pairs


def parse_delete(body: bytes) -> tuple[list[str], bool]:
    """`<Delete><Quiet/><Object><Key/></Object>…` → (keys, quiet)."""
    root = _parse(body, "Delete")
    keys = [obj.findtext("Key") or "" for obj in root.findall("Object")]
    if not keys or len(keys) > 1000 or not all(keys):
        raise OssError("MalformedXML")
    quiet = (root.findtext("Quiet") or "false").strip().lower() == "true"
    return keys, quiet


def cors_configuration(rules: Sequence[CorsRule]) -> bytes:
    """GetBucketCors's document: one CORSRule per rule, elements in the reference's order."""
    parts: list[str] = []
    for rule in rules:
        inner = [_el("AllowedOrigin", o) for o in rule.allowed_origins]
        inner += [_el("AllowedMethod", m) for m in rule.allowed_methods]
        inner += [_el("AllowedHeader", h) for h in rule.allowed_headers]
        inner += [_el("ExposeHeader", h) for h in rule.expose_headers]
        if rule.max_age_seconds is not None:
            inner.append(_el("MaxAgeSeconds", rule.max_age_seconds))
        parts.append("<CORSRule>" + "".join(inner) + "</CORSRule>")
    parts.append(_el("ResponseVary", False))
    return _doc("CORSConfiguration", parts)


def location_constraint(region: str) -> bytes:
    """GetBucketLocation's document: the region as OSS names it (`oss-cn-hangzhou`)."""
    return (_DECL + _el("LocationConstraint", f"oss-{region}")).encode()
