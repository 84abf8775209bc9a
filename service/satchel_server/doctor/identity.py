"""Where Satchel's own identity comes from, as the doctor reports it.

Today Satchel calls STS with the RAM user's static AccessKey from the environment
(`Settings.access_key`). This is the one function to point at the credential chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from satchel_server.config import ACCESS_KEY_ID_ENV, AccessKey, Settings


@dataclass(frozen=True)
class Identity:
    access_key: AccessKey
    source: str  # for the report: which source yielded the credentials


def resolve_identity(settings: Settings) -> Identity | None:
    """Satchel's credentials and their source, or None when no source yields any."""
    if settings.access_key is None:
        return None
    return Identity(settings.access_key, f"static AccessKey ({ACCESS_KEY_ID_ENV})")
