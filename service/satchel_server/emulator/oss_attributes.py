"""What an upload sets besides its bytes (Content-Type, `x-oss-meta-*`, ACL, tags), and the
rules OSS applies to object ACLs and tags.

OSS's PutObject, InitiateMultipartUpload and CopyObject references list the actions a
header adds: `x-oss-tagging` needs oss:PutObjectTagging on the object written. An
`x-oss-object-acl` header needs no action beyond the upload's own (oss:PutObject).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

from satchel_server.emulator.errors import OssError
from satchel_server.emulator.oss_call import OssCall, user_meta
from satchel_server.emulator.store import DEFAULT_ACL, Extras

OBJECT_ACLS = frozenset({"default", "private", "public-read", "public-read-write"})
ACL_HEADER = "x-oss-object-acl"
TAGGING_HEADER = "x-oss-tagging"
MAX_TAGS = 10
MAX_TAG_KEY_CHARS = 128
MAX_TAG_VALUE_CHARS = 256
# Letters, digits, space and `+ - = . _ : /`: the characters OSS allows in object tags.
_TAG_TEXT = re.compile(r"[A-Za-z0-9 +\-=._:/]*")
_TAG_CHARS = "letters, digits, spaces or +-=._:/"


def check_acl(value: str | None) -> str:
    if value is None or value not in OBJECT_ACLS:
        allowed = ", ".join(sorted(OBJECT_ACLS))
        raise OssError("InvalidArgument", f"{ACL_HEADER} must be one of: {allowed}.")
    return value


def check_tags(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """OSS's tag rules: at most 10, keys 1..128 and values 0..256 characters from the
    allowed set, no key twice."""
    tags: dict[str, str] = {}
    for key, value in pairs:
        if not 1 <= len(key) <= MAX_TAG_KEY_CHARS or not _TAG_TEXT.fullmatch(key):
            raise OssError("InvalidTag", f"A tag key must be 1..128 {_TAG_CHARS}.")
        if len(value) > MAX_TAG_VALUE_CHARS or not _TAG_TEXT.fullmatch(value):
            raise OssError("InvalidTag", f"A tag value must be 0..256 {_TAG_CHARS}.")
        if key in tags:
            raise OssError("InvalidTag", "A tag key may appear only once.")
        tags[key] = value
    if len(tags) > MAX_TAGS:
        raise OssError("InvalidTag", "An object can have at most 10 tags.")
    return tags


def parse_tagging_header(value: str) -> dict[str, str]:
    """`k1=v1&k2` (each part URL-encoded) -> tags; an item without `=` has an empty value."""
    pairs = []
    for item in value.split("&"):
        if not item:
            continue
        if item.count("=") > 1:
            raise OssError("InvalidArgument", f"{TAGGING_HEADER} must be key or key=value items.")
        key, _, tag_value = item.partition("=")
        pairs.append((unquote(key), unquote(tag_value)))
    return check_tags(pairs)


def upload_extras(
    call: OssCall, headers: Mapping[str, str], *, key: str, content_type: str
) -> Extras:
    """The metadata, ACL and tags an upload's headers set on `key`, with the actions the
    tags need checked."""
    acl = headers.get(ACL_HEADER)
    tagging = headers.get(TAGGING_HEADER)
    tags = parse_tagging_header(tagging) if tagging is not None else {}
    if tagging is not None:
        call.authorize("oss:PutObjectTagging", key)
    return Extras(
        content_type=headers.get("Content-Type", content_type),
        user_meta=user_meta(headers),
        acl=DEFAULT_ACL if acl is None else check_acl(acl),
        tags=tags,
    )
