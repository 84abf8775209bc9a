"""Percent-encoding rules, and where each scheme applies which.

All schemes keep exactly the RFC 3986 unreserved set ``A-Z a-z 0-9 - _ . ~`` and encode
every other UTF-8 byte as ``%XX`` (upper-case hex); space is ``%20`` (never ``+``) and ``*``
is ``%2A``. That is exactly what Python's ``urllib.parse.quote`` does (``~`` kept since
3.7); a test holds the faster tables below to it. What differs between schemes is *where*
the rule is applied and whether ``/`` survives:

=====================  ===========================================================
RPC 1.0 (STS)           ``pe(k)=pe(v)`` with ``/`` encoded; the StringToSign then
                        encodes the whole canonical query a second time.
ACS3                    canonical query as RPC; canonical URI keeps ``/``.
OSS V1                  the CanonicalizedResource is **not** encoded at all (raw
                        ``/bucket/key?sub=value``); the URL itself is encoded as V4.
OSS V4                  canonical URI ``/bucket/key`` keeps ``/``; canonical query
                        encodes ``/`` (keys and values); sorted by encoded key.
=====================  ===========================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, unquote_plus

from .errors import SigningError

MAX_KEY_BYTES = 1023


# Most names and values (parameter names, dates, ids, hex) need no escaping; recognising
# them with one C-level regex match is several times cheaper than going through quote().
_UNRESERVED_ONLY = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch


def _escape_table(keep: str) -> dict[int, str]:
    """Byte value -> ``%XX`` for every byte not in the unreserved set or ``keep``."""
    unreserved = frozenset(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~" + keep.encode()
    )
    return {byte: f"%{byte:02X}" for byte in range(256) if byte not in unreserved}


# Escaping as one C-level str.translate over the UTF-8 bytes (seen as Latin-1, one
# character per byte) is several times cheaper than quote()'s per-byte Python loop
# on keys full of spaces, '+', '%' or non-ASCII text; the output is the same.
_ESCAPE_ALL = _escape_table("")
_ESCAPE_PATH = _escape_table("/")


def pct(text: str) -> str:
    """Encode everything but the unreserved set (``/`` included): query keys and values."""
    if _UNRESERVED_ONLY(text):
        return text
    return text.encode("utf-8").decode("latin-1").translate(_ESCAPE_ALL)


def pct_path(text: str) -> str:
    """Encode a path, keeping ``/``: OSS V4 canonical URI, URL paths of object keys."""
    return text.encode("utf-8").decode("latin-1").translate(_ESCAPE_PATH)


def encode_query(params: Mapping[str, str]) -> list[str]:
    """``pct(k)=pct(v)`` items (``k`` alone when ``v`` is empty), in the mapping's order."""
    return [f"{pct(k)}={pct(v)}" if v else pct(k) for k, v in params.items()]


def decode_query(query: str, *, plus_is_space: bool = False) -> list[tuple[str, str]]:
    """Split ``a=1&b&c=%20`` into decoded pairs, in order, keeping duplicates.

    ``plus_is_space`` decodes ``+`` as a space, as form bodies, the RPC gateway and OSS
    do (oss2 sends query values form-encoded: a space as ``+``, a plus as ``%2B``).
    """
    unq = unquote_plus if plus_is_space else unquote
    pairs = []
    for item in query.split("&"):
        if item:
            k, _, v = item.partition("=")
            pairs.append((unq(k), unq(v)))
    return pairs


def sorted_pairs(pairs: Iterable[tuple[str, str]], *, flags: bool) -> str:
    """Join encoded pairs sorted by key; ``flags`` writes empty values as a bare key."""
    return "&".join(f"{k}={v}" if v or not flags else k for k, v in sorted(pairs))


def check_object_key(key: str | bytes | None, *, required: bool) -> str | None:
    """Return the key as ``str`` if it may be signed, else raise :class:`SigningError`.

    Keys are signed exactly as given: no normalisation of ``.``, ``..`` or ``//``.
    """
    if key is None or len(key) == 0:
        if required:
            raise SigningError("key", "must not be empty for an object request")
        return None
    try:
        raw = key if isinstance(key, bytes) else key.encode("utf-8")
        text = key.decode("utf-8") if isinstance(key, bytes) else key
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise SigningError("key", "must be valid UTF-8") from None
    if len(raw) > MAX_KEY_BYTES:
        raise SigningError("key", f"must be at most {MAX_KEY_BYTES} bytes in UTF-8")
    return text
