"""The route table: every signed sub-resource is routed, read by its operation, or refused;
and the rules for object ACLs and tags, by class."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satchel_server.emulator.errors import OssError
from satchel_server.emulator.oss_addressing import Target
from satchel_server.emulator.oss_attributes import (
    OBJECT_ACLS,
    check_acl,
    check_tags,
    parse_tagging_header,
)
from satchel_server.emulator.oss_multipart import copy_range
from satchel_server.emulator.oss_routes import (
    HONOURED,
    REFUSED,
    ROUTES,
    SELECTORS,
    resolve,
)
from satchel_server.emulator.store import Extras, ObjectStore
from satchel_server.signing.oss_v1 import SUB_RESOURCES

T = TypeVar("T")
METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD", "PATCH")
UNSIGNED = ("prefix", "max-keys", "encoding-type", "marker")


def test_every_sub_resource_has_exactly_one_role() -> None:
    assert SELECTORS | HONOURED | REFUSED == SUB_RESOURCES
    assert not SELECTORS & HONOURED
    assert not (SELECTORS | HONOURED) & REFUSED


def _outcome(call: Callable[[], T]) -> T | str:
    """What `call` returns, or the code of the OssError it raises."""
    try:
        return call()
    except OssError as error:
        return error.code


@given(
    method=st.sampled_from(METHODS),
    key=st.sampled_from([None, "players/1/a"]),
    names=st.lists(st.sampled_from(sorted(SUB_RESOURCES) + list(UNSIGNED)), max_size=4),
    copy=st.booleans(),
)
def test_no_signed_sub_resource_is_ever_ignored(
    method: str, key: str | None, names: list[str], copy: bool
) -> None:
    target = Target("b", key, False, tuple((name, "") for name in names))
    resolved = _outcome(lambda: resolve(method, target, copy))
    if isinstance(resolved, str):
        assert resolved in {"NotImplemented", "MethodNotAllowed", "InvalidArgument"}
        return
    signed = set(names) & SUB_RESOURCES
    selecting = signed & SELECTORS
    assert len(selecting) <= 1
    route = ROUTES[("bucket" if key is None else "object", method, next(iter(selecting), None))]
    assert signed - selecting - {"security-token"} <= route.honours
    expected = route.copy if copy else (route.operation, route.handler)
    assert (resolved.operation, resolved.handler) == expected
    assert resolved.action == route.action


@given(acl=st.text(max_size=20) | st.sampled_from(sorted(OBJECT_ACLS)))
def test_acl_values(acl: str) -> None:
    if acl in OBJECT_ACLS:
        assert check_acl(acl) == acl
    else:
        with pytest.raises(OssError) as info:
            check_acl(acl)
        assert info.value.code == "InvalidArgument"


_ALLOWED = re.compile(r"[A-Za-z0-9 +\-=._:/]*")
_tag_text = st.text(
    alphabet=st.sampled_from("aZ09 +-=._:/&%#é\u200b\x00<") | st.characters(), max_size=300
)


def _follows_rules(pairs: list[tuple[str, str]]) -> bool:
    keys = [k for k, _ in pairs]
    return (
        len(pairs) <= 10
        and len(set(keys)) == len(keys)
        and all(1 <= len(k) <= 128 and _ALLOWED.fullmatch(k) for k in keys)
        and all(len(v) <= 256 and _ALLOWED.fullmatch(v) for _, v in pairs)
    )


@given(pairs=st.lists(st.tuples(_tag_text, _tag_text), max_size=12))
def test_tags_are_accepted_exactly_when_they_follow_the_rules(
    pairs: list[tuple[str, str]],
) -> None:
    if _follows_rules(pairs):
        assert check_tags(pairs) == dict(pairs)
    else:
        with pytest.raises(OssError) as info:
            check_tags(pairs)
        assert info.value.code == "InvalidTag"


_valid_text = st.text(alphabet="abcXYZ019 +-=._:/", max_size=20)


@given(tags=st.dictionaries(_valid_text.filter(bool), _valid_text, max_size=10))
def test_tagging_header_round_trip(tags: dict[str, str]) -> None:
    header = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in tags.items())
    assert parse_tagging_header(header) == tags


def test_tagging_header_item_with_two_equals_signs() -> None:
    with pytest.raises(OssError) as info:
        parse_tagging_header("aa=bb=cc")
    assert info.value.code == "InvalidArgument"
    assert parse_tagging_header("flag&k=v") == {"flag": "", "k": "v"}


def test_attributes_never_touch_the_bytes(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    before = store.put("b", "k", b"bytes", extras=Extras("text/plain"), now=5.0)
    after = store.set_attributes("b", "k", acl="private", tags={"a": "1"})
    assert (after.acl, dict(after.tags)) == ("private", {"a": "1"})
    assert (after.etag, after.size, after.last_modified) == (
        before.etag,
        before.size,
        before.last_modified,
    )
    assert store.get("b", "k")[1] == b"bytes"
    # Read back from disk by a new store: the sidecar holds them.
    assert ObjectStore(tmp_path).head("b", "k") == after
    with pytest.raises(OssError) as info:
        store.set_attributes("b", "missing", acl="private")
    assert info.value.code == "NoSuchKey"


_ranges = st.none() | st.text(max_size=30) | st.from_regex(r"bytes=\d{0,4}-\d{0,4}")


@given(header=_ranges, size=st.integers(0, 5000))
def test_copy_source_ranges(header: str | None, size: int) -> None:
    span = _outcome(lambda: copy_range(header, size))
    if isinstance(span, str):
        assert span in {"InvalidArgument", "InvalidRange"}
        return
    start, end = span
    assert 0 <= start <= end <= size
    assert header is not None or span == (0, size)


@given(header=st.text(max_size=60))
def test_any_tagging_header_is_parsed_or_refused(header: str) -> None:
    tags = _outcome(lambda: parse_tagging_header(header))
    if isinstance(tags, str):
        assert tags in {"InvalidArgument", "InvalidTag"}
        return
    assert check_tags(tags.items()) == tags
