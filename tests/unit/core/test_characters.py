"""One character rule for player ids and keys, by class, whatever pattern the operator sets."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from support.scopes import make_scope

from satchel_server.errors import InvalidArgument
from satchel_server.rules.characters import REFUSED_CATEGORIES, check_characters
from satchel_server.rules.scopes import (
    DOCTOR_SESSION_NAME,
    MAX_PLAYER_ID_CHARS,
    check_object_key,
    check_player_id,
    role_session_name,
    scope_session_name,
)

# An operator's pattern that would let anything through: the hard rules still hold.
LAX = make_scope(player_id_pattern=r"(?s).*")
PREFIX = "players/p1/"
KEY = b"k" * 32


def code_points(category: str) -> st.SearchStrategy[str]:
    """Any code point of one Unicode general category, as Python's unicodedata knows them."""
    if category == "Cs":
        return st.integers(0xD800, 0xDFFF).map(chr)
    if category == "Co":
        return st.sampled_from([0xE000, 0xF8FF, 0xF0000, 0x10FFFD]).map(chr) | st.integers(
            0xE000, 0xF8FF
        ).map(chr)
    return st.characters(categories=[category])  # type: ignore[list-item]


@pytest.mark.parametrize("category", sorted(REFUSED_CATEGORIES))
@settings(deadline=None)  # the first draws of a category build hypothesis's tables
@given(data=st.data(), text=st.text("abc123_-", max_size=8))
def test_every_refused_category_is_refused_in_player_ids_and_keys(
    category: str, data: st.DataObject, text: str
) -> None:
    char = data.draw(code_points(category))
    assert unicodedata.category(char) == category
    at = data.draw(st.integers(0, len(text)))
    value = text[:at] + char + text[at:]
    words = f"{REFUSED_CATEGORIES[category]} U+{ord(char):04X}"
    for field, check in (
        ("player_id", lambda: check_player_id(LAX, value)),
        ("key", lambda: check_object_key(PREFIX, "k" + value)),
    ):
        with pytest.raises(InvalidArgument) as caught:
            check()
        assert caught.value.field == field
        assert words in caught.value.rule


@given(st.text(st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), min_size=1))
def test_visible_nfc_text_passes_the_character_rule_and_other_text_does_not(text: str) -> None:
    if unicodedata.is_normalized("NFC", text):
        check_characters("key", text)
    else:
        with pytest.raises(InvalidArgument, match="NFC"):
            check_characters("key", text)


@pytest.mark.parametrize("player_id", [".", "..", "a..b", "..a"])
def test_dot_player_ids_are_refused_whatever_the_pattern(player_id: str) -> None:
    with pytest.raises(InvalidArgument, match=r"must not be '\.' or contain '\.\.'"):
        check_player_id(LAX, player_id)


@given(st.integers(MAX_PLAYER_ID_CHARS + 1, 20_000), st.sampled_from([LAX, make_scope()]))
def test_a_too_long_player_id_is_told_it_is_too_long(length: int, scope: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_player_id(scope, "a" * length)  # type: ignore[arg-type]
    assert caught.value.field == "player_id"
    assert caught.value.rule == (f"is too long: {length} characters, at most {MAX_PLAYER_ID_CHARS}")


def test_an_empty_player_id_is_required_and_the_longest_is_accepted() -> None:
    with pytest.raises(InvalidArgument, match="is required"):
        check_player_id(LAX, "")
    check_player_id(LAX, "a" * MAX_PLAYER_ID_CHARS)


_STS_NAME = re.compile(r"[A-Za-z0-9.@_-]{2,64}")


@given(st.text(max_size=200), st.text(max_size=200))
def test_role_session_names_are_valid_and_one_to_one(one: str, other: str) -> None:
    assume(one != other)
    first, second = role_session_name(one, KEY), role_session_name(other, KEY)
    assert _STS_NAME.fullmatch(first)
    assert _STS_NAME.fullmatch(second)
    assert first != second


@given(st.from_regex(r"\A[A-Za-z0-9._@-]{1,56}\Z"))
def test_an_id_already_valid_is_its_own_session_name(player_id: str) -> None:
    assert role_session_name(player_id, KEY) == "satchel-" + player_id


def test_rewritten_ids_keep_a_readable_start_and_get_a_keyed_hash() -> None:
    spaced, dashed = role_session_name("a b", KEY), role_session_name("a-b", KEY)
    assert dashed == "satchel-a-b"
    assert re.fullmatch(r"satchel\.a-b\.[0-9a-f]{16}", spaced)
    assert role_session_name("a b", KEY) == spaced  # stable for one key
    assert role_session_name("a b", b"another key 1234") != spaced
    long_a, long_b = "a" * 63 + "x", "a" * 63 + "y"
    assert role_session_name(long_a, KEY) != role_session_name(long_b, KEY)


@given(st.text(max_size=80), st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,31}\Z"))
def test_no_player_takes_the_session_name_of_a_scopes_presigning_credentials(
    player_id: str, scope_name: str
) -> None:
    assert _STS_NAME.fullmatch(scope_session_name(scope_name))
    assert role_session_name(player_id, KEY) != scope_session_name(scope_name)


@given(st.text(max_size=80))
@example("doctor")
def test_no_player_takes_the_session_name_of_the_doctors_probes(player_id: str) -> None:
    assert _STS_NAME.fullmatch(DOCTOR_SESSION_NAME)
    assert role_session_name(player_id, KEY) != DOCTOR_SESSION_NAME
    assert scope_session_name(player_id) != DOCTOR_SESSION_NAME
