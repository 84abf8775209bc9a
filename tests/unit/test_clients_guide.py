"""docs/clients.md keeps up with the API: each language's PUT presign gives the body's size,
which the server requires (the URL signs it) and refuses a PUT without."""

from __future__ import annotations

import re
from pathlib import Path

GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "clients.md").read_text()
CODE_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
# A PUT asked for, as each language's generated code (or JSON, or the Node client) spells it.
PUT = re.compile(r'HTTP_METHOD_PUT|HttpMethod\.Put\b|HttpMethod\.PUT\b|"PUT"')
# The size given, as each spells content_length.
SIZE = re.compile(r"content_length|ContentLength|contentLength")


def asked(body: str) -> str:
    """The block without its uploads (a fetch that sends the PUT is not a presign)."""
    return "\n".join(line for line in body.splitlines() if "fetch(" not in line)


def test_every_put_in_the_guide_gives_its_size() -> None:
    blocks = [(lang, asked(body)) for lang, body in CODE_BLOCK.findall(GUIDE) if PUT.search(body)]
    assert len(blocks) >= 7  # Go, C#, Java, C++, TypeScript, the Node client, grpcurl
    for language, body in blocks:
        puts, sizes = len(PUT.findall(body)), len(SIZE.findall(body))
        assert sizes >= puts, f"a {language or 'text'} block asks for PUT without content_length"
