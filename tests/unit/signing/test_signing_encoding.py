"""The escape tables are byte-for-byte urllib.parse.quote, only faster."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from satchel_server.signing.encoding import pct, pct_path

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_pct_equals_quote_with_nothing_safe(text: str) -> None:
    assert pct(text) == quote(text, safe="")


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_pct_path_equals_quote_keeping_slashes(text: str) -> None:
    assert pct_path(text) == quote(text, safe="/")


def test_every_byte_value_is_escaped_as_quote_escapes_it() -> None:
    every_byte = bytes(range(256)).decode("latin-1")
    assert pct(every_byte) == quote(every_byte, safe="")
    assert pct_path("a b+c/%d/存档 ~*") == "a%20b%2Bc/%25d/%E5%AD%98%E6%A1%A3%20~%2A"
