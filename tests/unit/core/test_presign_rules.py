"""PresignObject validation: keys, methods, expiry, content type, POST size."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.scopes import make_scope

from satchel_server.errors import InvalidArgument
from satchel_server.rules.scopes import check_object_key, validate_presign_request
from satchel_server.vocabulary import HttpMethod

SCOPE = make_scope()
PREFIX = "players/p1/"


def presign(**overrides: object):
    fields: dict[str, object] = {
        "scope_name": "",
        "player_id": "p1",
        "key": "save.dat",
        "method": HttpMethod.GET,
        "expires_seconds": None,
        "content_type": "",
        "max_size": 0,
        "forbid_overwrite": False,
    }
    fields.update(overrides)
    return validate_presign_request({"saves": SCOPE}, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("../13/s", "'.' or '..' segments"),
        ("./s", "'.' or '..' segments"),
        ("a/./s", "'.' or '..' segments"),
        ("a//s", "empty segments"),
        ("a/", "empty segments"),
        ("/s", "no leading '/'"),
        ("a\\s", "'\\'"),
        ("a\x00s", "control character U+0000"),
        ("a\r\ns", "control character U+000D"),
        ("a\x7fs", "control character U+007F"),
        ("a\x85s", "control character U+0085"),
        ("evil\u202etxt.exe", "invisible format character U+202E"),
        ("save\u200b.dat", "invisible format character U+200B"),
        ("\ufeffsave.dat", "invisible format character U+FEFF"),
        ("a\u2028s", "line separator U+2028"),
        ("a\u2029s", "paragraph separator U+2029"),
        ("a\ue000s", "private-use character U+E000"),
        ("a\u0378s", "unassigned code point U+0378"),
        ("${filename}", "'${'"),
        ("a/${x}", "'${'"),
        (unicodedata.normalize("NFD", "café.sav"), "not NFC-normalised"),
        ("", "is required"),
        ("x" * (1024 - len(PREFIX)), "full key of 1024 bytes"),
        ("é" * 508, "full key of 1027 bytes"),
    ],
)
def test_unsafe_keys_are_rejected_naming_the_rule(key: str, rule: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_object_key(PREFIX, key)
    assert caught.value.field == "key"
    assert rule in caught.value.rule


@pytest.mark.parametrize(
    "key",
    ["save.dat", "slot 1+2=3&x?#%~*.sav", "存档/第一关.dat", "a/b/c", "...", "a..b", "x" * 1012],
)
def test_ordinary_keys_become_full_keys_inside_the_folder(key: str) -> None:
    assert check_object_key(PREFIX, key) == PREFIX + key
    assert len((PREFIX + "x" * 1012).encode()) == 1023


@pytest.mark.parametrize(
    ("overrides", "field", "rule"),
    [
        ({"method": None}, "method", "is required"),
        ({"expires_seconds": 0}, "expires_in", "between 1 and 1800"),
        ({"expires_seconds": -5}, "expires_in", "between 1 and 1800"),
        ({"expires_seconds": 604801}, "expires_in", "between 1 and 1800"),
        ({"expires_seconds": 1.5}, "expires_in", "whole number"),
        ({"content_type": "image/png"}, "content_type", "PUT and POST only"),
        (
            {"method": HttpMethod.PUT, "content_type": "text/plain\r\nX-Evil: 1"},
            "content_type",
            "media type",
        ),
        ({"method": HttpMethod.PUT, "content_type": "nonsense"}, "content_type", "media type"),
        ({"forbid_overwrite": True}, "forbid_overwrite", "PUT and POST only"),
        ({"method": HttpMethod.POST, "max_size": -1}, "max_size", "must not be negative"),
        ({"method": HttpMethod.POST, "max_size": 200 * 1024 * 1024}, "max_size", "at most"),
        ({"player_id": "p*"}, "player_id", "must not contain '*'"),
        ({"scope_name": "other"}, "scope", "unknown scope"),
    ],
)
def test_bad_requests_name_the_field(overrides: dict, field: str, rule: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        presign(**overrides)
    assert caught.value.field == field
    assert rule in caught.value.rule


@pytest.mark.parametrize(
    ("method", "permissions"),
    [
        (HttpMethod.GET, ("write", "list", "delete")),
        (HttpMethod.HEAD, ("write",)),
        (HttpMethod.PUT, ("read", "delete")),
        (HttpMethod.POST, ("read",)),
        (HttpMethod.DELETE, ("read", "write")),
    ],
)
def test_each_method_needs_its_permission_in_the_scope(
    method: HttpMethod, permissions: tuple
) -> None:
    narrow = make_scope(permissions=permissions, default_permissions=permissions[:1])
    with pytest.raises(InvalidArgument, match="which scope 'saves' does not allow") as caught:
        validate_presign_request(
            {"saves": narrow},
            scope_name="",
            player_id="p1",
            key="k",
            method=method,
            expires_seconds=None,
            content_type="",
            max_size=0,
            forbid_overwrite=False,
        )
    assert caught.value.field == "method"


def test_defaults_fill_in_expiry_and_post_size() -> None:
    get = presign()
    assert (get.key, get.expires_seconds, get.max_size) == ("players/p1/save.dat", 900, None)
    post = presign(method=HttpMethod.POST, content_type="image/png; charset=binary")
    assert post.max_size == SCOPE.post_max_size_default_bytes
    assert post.content_type == "image/png; charset=binary"
    assert presign(method=HttpMethod.POST, max_size=123).max_size == 123


PRINTABLE_ASCII_BUT_SLASHES = st.characters(
    min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="/\\"
)


@given(
    method=st.sampled_from(list(HttpMethod)),
    before=st.text(PRINTABLE_ASCII_BUT_SLASHES, max_size=8),
    after=st.text(PRINTABLE_ASCII_BUT_SLASHES, max_size=8),
)
def test_a_key_with_a_form_variable_is_refused_for_every_method(
    method: HttpMethod, before: str, after: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        presign(key=f"x{before}${{{after}", method=method)
    assert (caught.value.field, caught.value.rule) == ("key", "must not contain '${'")
