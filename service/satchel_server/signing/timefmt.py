"""Time formats the schemes use. Time is always passed in: nothing here reads a clock."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from .errors import SigningError

MAX_EXPIRES = 604800  # seven days: OSS refuses presigned URLs that live longer


def utc(now: datetime, field: str = "now") -> datetime:
    """``now`` in UTC; a naive datetime is refused (its zone would be a guess)."""
    if now.tzinfo is UTC:
        return now  # the common case, and the hot path: skip astimezone
    if now.tzinfo is None or now.utcoffset() is None:
        raise SigningError(field, "must be timezone-aware")
    return now.astimezone(UTC)


def check_expires(expires: int) -> int:
    if isinstance(expires, bool) or not isinstance(expires, int):
        raise SigningError("expires", "must be an int number of seconds")
    if not 1 <= expires <= MAX_EXPIRES:
        raise SigningError("expires", f"must be within 1..{MAX_EXPIRES} seconds")
    return expires


def iso_basic(now: datetime) -> str:
    """``20240102T030405Z`` (OSS V4 ``x-oss-date``)."""
    return now.strftime("%Y%m%dT%H%M%SZ")


# The last second formatted: strftime is a tenth of a presign's cost and a busy server asks
# for the same second thousands of times. A tuple swap is atomic, so threads may share it.
_last_stamp: tuple[int, str] = (-1, "")


def epoch_and_stamp(now: datetime) -> tuple[int, str]:
    """(epoch seconds, ``iso_basic``) of a UTC ``now``, memoised for the last second."""
    global _last_stamp  # noqa: PLW0603 - a one-entry memo, see above
    epoch = int(now.timestamp())
    memo = _last_stamp
    if memo[0] == epoch:
        return memo
    memo = _last_stamp = (epoch, iso_basic(now))
    return memo


def iso_extended(now: datetime) -> str:
    """``2024-01-02T03:04:05Z`` (RPC ``Timestamp``, ACS3 ``x-acs-date``)."""
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(now: datetime) -> str:
    """``2024-01-02T03:04:05.000Z`` (PostObject policy ``expiration``)."""
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def http_date(now: datetime) -> str:
    """``Tue, 02 Jan 2024 03:04:05 GMT`` (OSS V1 ``Date``); locale-independent."""
    return format_datetime(now, usegmt=True)


def parse_iso_basic(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def parse_iso_extended(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def parse_iso_millis(text: str) -> datetime:
    """Policy expirations: with or without fractional seconds."""
    if "." in text:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return parse_iso_extended(text)


def parse_http_date(text: str) -> datetime:
    parsed = parsedate_to_datetime(text)
    if parsed.tzinfo is None:
        raise ValueError("HTTP date without zone")
    return parsed.astimezone(UTC)
