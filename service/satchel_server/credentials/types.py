"""Temporary credentials as frozen values; secrets never in repr; expiry from STS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

STS_EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware UTC. Injected so tests can move it."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_sts_expiration(text: str) -> datetime:
    """Parse STS's `YYYY-MM-DDTHH:MM:SSZ`, strictly: anything else is a ValueError."""
    return datetime.strptime(text, STS_EXPIRATION_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TemporaryCredentials:
    """What STS AssumeRole returned. Only the AccessKeyId is safe to log."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expiration: datetime

    def remaining_seconds(self, now: datetime) -> float:
        return (self.expiration - now).total_seconds()
