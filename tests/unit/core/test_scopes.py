"""Validation of player ids, scopes, permissions and TTLs: one place for every RPC."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.scopes import make_scope

from satchel_server.errors import InvalidArgument
from satchel_server.rules.scopes import (
    check_player_id,
    player_prefix,
    resolve_permissions,
    resolve_scope,
    resolve_ttl,
    validate_token_request,
)
from satchel_server.vocabulary import PlayerPermission

SCOPE = make_scope()
# An operator's pattern that would let anything through: the hard rules still hold.
LAX = make_scope(player_id_pattern=r"^.{1,200}$")


@pytest.mark.parametrize(
    "player_id",
    [
        "12*",
        "1?",
        "${*}",
        "${acs:x}",
        '"',
        "\\",
        '},{"Effect":"Allow","Action":"oss:*"',
        "",
        "/",
        "..",
        ".",
        "a..b",
        "p\u200b",
        "\ufeffp",
        "p\u2028",
        "p\ue000",
        "a" * 10_000,
        "p\x00",
        "p\n",
        "p\x7f",
        "pé",
        "p\u202e",
        "p{",
        "p}",
    ],
)
def test_policy_widening_player_ids_are_rejected_even_by_a_lax_pattern(player_id: str) -> None:
    for scope in (SCOPE, LAX):
        with pytest.raises(InvalidArgument) as caught:
            check_player_id(scope, player_id)
        assert caught.value.field == "player_id"


def test_player_id_must_match_the_scope_pattern() -> None:
    check_player_id(SCOPE, "a" * 64)
    with pytest.raises(InvalidArgument, match=r"must match the scope's pattern"):
        check_player_id(SCOPE, "a" * 65)
    with pytest.raises(InvalidArgument, match="pattern"):
        check_player_id(SCOPE, "has space")


@given(st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z"))
def test_every_accepted_player_gets_a_folder_of_their_own(player_id: str) -> None:
    check_player_id(SCOPE, player_id)
    assert player_prefix(SCOPE, player_id) == f"players/{player_id}/"


def test_scope_resolution() -> None:
    other = make_scope(name="replays", default=False)
    scopes = {"saves": SCOPE, "replays": other}
    assert resolve_scope(scopes, "") is SCOPE
    assert resolve_scope(scopes, "replays") is other
    with pytest.raises(InvalidArgument, match="unknown scope 'nope'") as caught:
        resolve_scope(scopes, "nope")
    assert caught.value.field == "scope"
    with pytest.raises(InvalidArgument, match="no default scope"):
        resolve_scope({"replays": other}, "")


def test_permissions_default_and_must_be_allowed() -> None:
    narrow = make_scope(permissions=("read", "list"), default_permissions=("read",))
    assert resolve_permissions(narrow, []) == {PlayerPermission.READ}
    assert resolve_permissions(narrow, [PlayerPermission.LIST, PlayerPermission.LIST]) == {
        PlayerPermission.LIST
    }
    with pytest.raises(InvalidArgument, match="'write' is not allowed in scope 'saves'"):
        resolve_permissions(narrow, [PlayerPermission.READ, PlayerPermission.WRITE])


def test_ttl_bounds() -> None:
    scope = make_scope(ttl_min_seconds=900, ttl_default_seconds=1800, ttl_max_seconds=3600)
    assert resolve_ttl(scope, None) == 1800
    assert resolve_ttl(scope, 900) == 900
    assert resolve_ttl(scope, 3600.0) == 3600
    for bad in (899, 3601, 0, -5):
        with pytest.raises(InvalidArgument, match="between 900 and 3600") as caught:
            resolve_ttl(scope, bad)
        assert caught.value.field == "ttl"
    with pytest.raises(InvalidArgument, match="whole number"):
        resolve_ttl(scope, 1000.5)


def test_validate_token_request_checks_everything_in_order() -> None:
    request = validate_token_request(
        {"saves": SCOPE}, scope_name="", player_id="p1", permissions=[], ttl_seconds=None
    )
    assert (request.scope, request.prefix, request.permissions, request.ttl_seconds) == (
        SCOPE,
        "players/p1/",
        frozenset({PlayerPermission.READ}),
        3600,
    )
