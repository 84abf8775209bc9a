"""Glob matching for RAM policies: `*` (any run, even empty) and `?` (exactly one character).

The pattern is split at its stars and the pieces are placed greedily, each at its leftmost
possible position. Greedy leftmost placement is optimal for globs, so there is no backtracking:
`*********x` against a 100k-character string costs one scan, not an exponential search (a
regex translation of the same pattern can take minutes).
"""

from __future__ import annotations

from functools import lru_cache


def _piece_at(piece: str, text: str, pos: int) -> bool:
    """True when `piece` (may contain `?`) matches `text` starting exactly at `pos`."""
    if pos + len(piece) > len(text):
        return False
    for offset, char in enumerate(piece):
        if char != "?" and text[pos + offset] != char:
            return False
    return True


def _find_piece(piece: str, text: str, start: int, end: int) -> int:
    """Leftmost index in [start, end - len(piece)] where `piece` matches, or -1."""
    if "?" not in piece:
        return text.find(piece, start, end)
    last = end - len(piece)
    pos = start
    while pos <= last:
        if _piece_at(piece, text, pos):
            return pos
        pos += 1
    return -1


@lru_cache(maxsize=4096)
def _split(pattern: str) -> tuple[str, ...]:
    return tuple(pattern.split("*"))


def wildcard_match(pattern: str, text: str) -> bool:
    """Match `text` against a RAM glob `pattern` (case-sensitive)."""
    pieces = _split(pattern)
    if len(pieces) == 1:
        return len(text) == len(pattern) and _piece_at(pattern, text, 0)
    head, *middle, tail = pieces
    if len(head) + len(tail) > len(text):
        return False
    if not _piece_at(head, text, 0) or not _piece_at(tail, text, len(text) - len(tail)):
        return False
    pos = len(head)
    end = len(text) - len(tail)
    for piece in middle:
        if not piece:
            continue
        found = _find_piece(piece, text, pos, end)
        if found < 0:
            return False
        pos = found + len(piece)
    return True
