"""PresignObject validation: keys, methods, expiry, content type, upload sizes; IssueToken
`write` in a scope with a folder quota."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.scopes import make_scope

from satchel_server.config import ScopeSettings, settings_from_mapping
from satchel_server.errors import ConfigError, InvalidArgument
from satchel_server.rules.scopes import (
    MAX_PRESIGN_ITEMS,
    check_item_count,
    check_object_key,
    validate_presign_item,
    validate_presign_request,
    validate_presign_subject,
    validate_token_request,
)
from satchel_server.vocabulary import HttpMethod, PlayerPermission

SCOPE = make_scope()
PREFIX = "players/p1/"


def presign(within: ScopeSettings = SCOPE, **overrides: object):
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
    return validate_presign_request({"saves": within}, **fields)  # type: ignore[arg-type]


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


CAP = SCOPE.post_max_size_cap_bytes


@settings(deadline=None)  # timing varies on a loaded machine
@given(size=st.integers(-3, 3) | st.integers(CAP - 3, CAP + 3) | st.integers(-(2**63), 2**63))
def test_a_put_signs_any_size_from_zero_to_the_scopes_cap(size: int) -> None:
    if 0 <= size <= CAP:
        assert presign(method=HttpMethod.PUT, content_length=size).content_length == size
        return
    with pytest.raises(InvalidArgument) as caught:
        presign(method=HttpMethod.PUT, content_length=size)
    assert caught.value.field == "content_length"
    assert ("negative" if size < 0 else f"at most {CAP} bytes") in caught.value.rule


def test_a_put_must_say_its_size() -> None:
    with pytest.raises(InvalidArgument, match="is required for PUT") as caught:
        presign(method=HttpMethod.PUT)
    assert caught.value.field == "content_length"


@pytest.mark.parametrize(
    "method", [HttpMethod.GET, HttpMethod.HEAD, HttpMethod.DELETE, HttpMethod.POST]
)
def test_only_a_put_gives_a_content_length(method: HttpMethod) -> None:
    with pytest.raises(InvalidArgument, match="PUT only") as caught:
        presign(method=method, content_length=1)
    assert caught.value.field == "content_length"


def test_a_v1_scope_refuses_put_and_names_the_ways_that_work() -> None:
    with pytest.raises(InvalidArgument) as caught:
        presign(make_scope(presign_signature="v1"), method=HttpMethod.PUT, content_length=10)
    assert caught.value.field == "method"
    assert "POST" in caught.value.rule
    assert "V4" in caught.value.rule


def test_the_upload_cap_is_a_puts_size_or_a_posts_max_size() -> None:
    assert presign(method=HttpMethod.PUT, content_length=5).upload_cap == 5
    assert presign(method=HttpMethod.POST, max_size=7).upload_cap == 7
    assert presign(method=HttpMethod.POST).upload_cap == SCOPE.post_max_size_default_bytes
    assert presign(method=HttpMethod.GET).upload_cap is None


def token(scope_settings: object, *permissions: PlayerPermission) -> object:
    return validate_token_request(
        {"saves": scope_settings},  # type: ignore[dict-item]
        scope_name="",
        player_id="p1",
        permissions=permissions,
        ttl_seconds=None,
    )


def test_issue_token_refuses_write_where_a_folder_quota_is_set() -> None:
    quota_scope = make_scope(folder_quota_bytes=1000)
    with pytest.raises(InvalidArgument) as caught:
        token(quota_scope, PlayerPermission.READ, PlayerPermission.WRITE)
    assert caught.value.field == "permissions"
    assert "PresignObject" in caught.value.rule
    token(quota_scope, PlayerPermission.READ, PlayerPermission.LIST)  # the rest stays
    token(make_scope(), PlayerPermission.WRITE)  # no quota: write as before


QUOTA_SCOPE_TABLE = {
    "bucket": "game-saves",
    "region": "cn-hangzhou",
    "role_arn": "acs:ram::1234567890123456:role/satchel-saves",
    "endpoint": "https://oss-cn-hangzhou.aliyuncs.com",
    "folder_quota_bytes": 1000,
}


def test_a_quota_scope_cannot_give_write_by_default() -> None:
    scope = {**QUOTA_SCOPE_TABLE, "default_permissions": ["read", "write"]}
    with pytest.raises(ConfigError, match="PresignObject") as caught:
        settings_from_mapping({"scopes": {"saves": scope}}, {})
    assert caught.value.key == "scopes.saves.default_permissions"


def with_grant(permissions: list[str], methods: list[str]) -> dict[str, object]:
    grant = {"permissions": permissions, "methods": methods}
    caller = {"keys": ["0123456789abcdef:sha256:" + "0" * 64], "scopes": {"saves": grant}}
    return {"scopes": {"saves": QUOTA_SCOPE_TABLE}, "callers": {"game": caller}}


def test_a_caller_cannot_be_granted_write_in_a_quota_scope() -> None:
    with pytest.raises(ConfigError, match="grant PUT or POST") as caught:
        settings_from_mapping(with_grant(["read", "write"], []), {})
    assert caught.value.key == "callers.game.scopes.saves.permissions"
    settings_from_mapping(with_grant(["read"], ["PUT", "POST"]), {})  # uploads: presigned


@given(count=st.integers(min_value=-5, max_value=10_000))
def test_a_batch_holds_1_to_100_items(count: int) -> None:
    if 1 <= count <= MAX_PRESIGN_ITEMS:
        check_item_count(count)
        return
    with pytest.raises(InvalidArgument) as caught:
        check_item_count(count)
    assert (caught.value.field, caught.value.rule) == (
        "items",
        f"must hold 1 to 100 items; got {count}",
    )


def test_an_item_error_names_its_field_from_the_request_root() -> None:
    subject = validate_presign_subject({"saves": make_scope()}, scope_name="", player_id="p1")
    with pytest.raises(InvalidArgument) as caught:
        validate_presign_item(
            subject,
            key="a//b",
            method=HttpMethod.GET,
            expires_seconds=None,
            content_type="",
            max_size=0,
            forbid_overwrite=False,
        )
    nested = caught.value.within("items[7]")
    assert (nested.field, nested.rule) == ("items[7].key", caught.value.rule)
    assert str(nested) == f"items[7].key: {caught.value.rule}"


def two_scopes(quota_template: str, other_template: str, other_bucket: str = "game-saves") -> dict:
    quota = {**QUOTA_SCOPE_TABLE, "prefix_template": quota_template, "default": True}
    other = {**QUOTA_SCOPE_TABLE, "folder_quota_bytes": 0, "bucket": other_bucket}
    return {"scopes": {"saves": quota, "shots": {**other, "prefix_template": other_template}}}


@pytest.mark.parametrize(
    ("quota_template", "other_template"),
    [
        ("players/{player_id}/", "players/{player_id}/"),  # the same folders
        ("players/{player_id}/", "players/{player_id}/shots/"),  # inside the quota's
        ("players/{player_id}/saves/", "players/{player_id}/"),  # around the quota's
        ("players/{player_id}/", "players/vip/{player_id}/"),  # inside player "vip"'s
        ("p{player_id}/", "{player_id}/"),  # player "px" there is player "x" here
    ],
)
def test_no_other_scope_may_write_into_a_quota_scopes_folders(
    quota_template: str, other_template: str
) -> None:
    with pytest.raises(ConfigError, match="'shots' reaches the same player folders") as caught:
        settings_from_mapping(two_scopes(quota_template, other_template), {})
    assert caught.value.key == "scopes.saves.folder_quota_bytes"


@pytest.mark.parametrize(
    ("quota_template", "other_template", "other_bucket"),
    [
        ("players/{player_id}/saves/", "players/{player_id}/shots/", "game-saves"),
        ("saves/{player_id}/", "shots/{player_id}/", "game-saves"),
        ("players/{player_id}/", "players/{player_id}/", "game-shots"),
    ],
)
def test_scopes_with_folders_apart_may_sit_beside_a_quota(
    quota_template: str, other_template: str, other_bucket: str
) -> None:
    settings = settings_from_mapping(two_scopes(quota_template, other_template, other_bucket), {})
    assert settings.scopes["saves"].folder_quota_bytes == 1000


# Prefix templates built from a few segments, and player ids that name those segments
# (or extend them), so that any way two templates' folders can meet shows up.
SEGMENTS = ("players", "vip", "p", "saves")
PLAYER_IDS = ("x", "y", "x-a", *SEGMENTS, *(f"{s}-a" for s in SEGMENTS))
TEMPLATES = st.builds(
    lambda head, glue, tail: "".join(f"{s}/" for s in head) + glue + "{player_id}" + tail,
    st.lists(st.sampled_from(SEGMENTS), max_size=2),
    st.sampled_from(["", "p"]),
    st.sampled_from(["/", "-a/", "/saves/", "/vip/"]),
)


def folders_of_other_players_meet(one: str, other: str) -> bool:
    """Brute force: a folder of one player in `one` holds or lies in another's in `other`."""
    for mine in PLAYER_IDS:
        for theirs in PLAYER_IDS:
            if mine == theirs:
                continue
            a = one.replace("{player_id}", mine)
            b = other.replace("{player_id}", theirs)
            if a.startswith(b) or b.startswith(a):
                return True
    return False


@settings(max_examples=300)
@given(one=TEMPLATES, other=TEMPLATES)
def test_scopes_on_one_bucket_never_let_a_player_reach_another_players_folder(
    one: str, other: str
) -> None:
    scopes = two_scopes(one, other)
    scopes["scopes"]["saves"]["folder_quota_bytes"] = 0
    if folders_of_other_players_meet(one, other):
        with pytest.raises(ConfigError, match="another player's folder") as caught:
            settings_from_mapping(scopes, {})
        assert caught.value.key.endswith(".prefix_template")
    elif one == other:
        settings_from_mapping(scopes, {})  # the same folders, another set of rules: fine


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("players/{player_id}/", "players/{player_id}/"),
        ("players/{player_id}/", "players/{player_id}/shots/"),  # the same player's, nested
        ("saves/{player_id}/", "shots/{player_id}/"),
    ],
)
def test_scopes_whose_players_stay_apart_load(one: str, other: str) -> None:
    scopes = two_scopes(one, other)
    scopes["scopes"]["saves"]["folder_quota_bytes"] = 0
    assert set(settings_from_mapping(scopes, {}).scopes) == {"saves", "shots"}
