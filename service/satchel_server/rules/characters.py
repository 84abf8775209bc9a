"""The character rule shared by player ids and object keys: what you see is what it is.

A name that displays as `save.dat` must be `save.dat`. So a name is refused when
it is not NFC (two spellings of one look), or holds a code point of a Unicode
general category that is invisible, reorders text, breaks lines or means nothing
on its own: controls (Cc), format characters such as zero-width spaces, the
byte-order mark and bidi controls (Cf), line and paragraph separators (Zl, Zp),
private use (Co), surrogates (Cs) and unassigned code points (Cn).
"""

from __future__ import annotations

import unicodedata

from satchel_server.errors import InvalidArgument

# Refused general categories, with the words a refusal uses for each.
REFUSED_CATEGORIES: dict[str, str] = {
    "Cc": "control character",
    "Cf": "invisible format character",
    "Zl": "line separator",
    "Zp": "paragraph separator",
    "Co": "private-use character",
    "Cs": "surrogate code point",
    "Cn": "unassigned code point",
}


def check_characters(field: str, value: str) -> None:
    """Raise InvalidArgument naming `field` unless `value` is NFC with no refused code point."""
    # Printable ASCII is NFC and holds none of the refused categories.
    if value.isascii() and value.isprintable():
        return
    for char in value:
        category = unicodedata.category(char)
        if category in REFUSED_CATEGORIES:
            raise InvalidArgument(
                field, f"must not contain {REFUSED_CATEGORIES[category]} U+{ord(char):04X}"
            )
    if not unicodedata.is_normalized("NFC", value):
        raise InvalidArgument(field, "is not NFC-normalised; normalise it to NFC before sending")
