"""The RAM glob matcher: agrees with fnmatch-style semantics and never backtracks."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from satchel_server.emulator.wildcard import wildcard_match


def _reference(pattern: str, text: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, flags=re.DOTALL) is not None


def test_basic_cases() -> None:
    assert wildcard_match("players/12/*", "players/12/a/b")
    assert not wildcard_match("players/12/*", "players/123/a")
    assert wildcard_match("players/12*", "players/123/a")
    assert wildcard_match("a?c", "abc")
    assert not wildcard_match("a?c", "ac")
    assert wildcard_match("*", "")
    assert wildcard_match("", "")
    assert not wildcard_match("", "x")
    assert wildcard_match("a*b*c", "aXbYbZc")
    assert not wildcard_match("a*b*c", "aXbYbZ")
    assert wildcard_match("*a", "a")
    assert not wildcard_match("ab*ba", "aba")


def test_case_sensitive() -> None:
    assert not wildcard_match("Players/*", "players/x")


def test_many_stars_against_long_text_is_fast() -> None:
    # A regex engine backtracks exponentially here; the greedy matcher makes one pass.
    text = "a" * 100_000
    assert not wildcard_match("*********x", text)
    assert wildcard_match("*********a", text)
    assert not wildcard_match("*?*?*?*?*?*b", text)


_alphabet = st.text(alphabet="ab*?/", max_size=12)


@given(pattern=_alphabet, text=st.text(alphabet="ab/", max_size=16))
def test_agrees_with_reference(pattern: str, text: str) -> None:
    assert wildcard_match(pattern, text) == _reference(pattern, text)
