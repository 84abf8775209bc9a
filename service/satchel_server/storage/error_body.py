"""OSS's error document: the Code and Message an error answer carries."""

from __future__ import annotations

import xml.etree.ElementTree as ET

# An error document is a few hundred bytes; more is not read.
MAX_ERROR_BODY = 65536


def oss_error(body: bytes) -> tuple[str, str]:
    """The error's Code and Message, or empty strings when the body is no error document.

    Neither is ever a secret: OSS names the failed check, never a key or signature.
    """
    try:
        # From OSS (or the emulator); expat refuses external entities, the size is bounded.
        root = ET.fromstring(body[:MAX_ERROR_BODY])  # noqa: S314
    except ET.ParseError:
        return "", ""
    return root.findtext("Code") or "", root.findtext("Message") or ""
