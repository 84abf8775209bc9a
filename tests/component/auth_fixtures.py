"""Helpers for the caller-authentication component tests: settings, metadata, audit lines.

The stack is `satchel dev`'s (Satchel + emulator in-process, 127.0.0.1:0) with callers,
limits and an audit file added, so what runs is what `satchel serve` wires.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from satchel_server.access.bearer import NewKey, generate_key
from satchel_server.config import (
    AuditSettings,
    CallerSettings,
    GrantSettings,
    LimitSettings,
    Settings,
    TlsSettings,
)
from satchel_server.emulator.runner import Emulator
from satchel_server.wiring import dev_settings

EU_KEY = generate_key()  # game-eu's current key
EU_OLD_KEY = generate_key()  # game-eu's previous key, rotated out of the configuration
US_KEY = generate_key()

EU_GRANT = GrantSettings(
    scope="dev",
    permissions=("read", "write", "list"),
    methods=("GET", "PUT", "HEAD", "POST"),
    player_id_pattern="eu-[0-9]+",
)


def caller(name: str, key: NewKey | None, *grants: GrantSettings, **fields: Any) -> CallerSettings:
    return CallerSettings(
        name=name,
        keys=(key.config_entry,) if key else (),
        scopes={grant.scope: grant for grant in grants},
        **fields,
    )


DEFAULT_CALLERS = (
    caller("game-eu", EU_KEY, EU_GRANT),
    caller("game-us", US_KEY, GrantSettings(scope="other", permissions=("read",))),
)


def auth_settings(
    emulator: Emulator,
    audit_file: Path,
    callers: tuple[CallerSettings, ...] = DEFAULT_CALLERS,
    limits: LimitSettings | None = None,
    tls: TlsSettings | None = None,
) -> Settings:
    """Dev settings plus a second scope ("other"), callers, limits and an audit file."""
    base = dev_settings("127.0.0.1:0", emulator)
    dev = base.scopes["dev"]
    return dataclasses.replace(
        base,
        scopes={"dev": dev, "other": dataclasses.replace(dev, name="other", default=False)},
        callers={c.name: c for c in callers},
        limits=limits or LimitSettings(player_rate_per_second=0),
        # Lines written at once, so a test reads a call's line as soon as it ends.
        audit=AuditSettings(output=str(audit_file), flush_ms=0),
        tls=tls or TlsSettings(),
    )


def bearer(key: NewKey | str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key.key if isinstance(key, NewKey) else key}"),)


def audit_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def metadata_value(metadata: Any, key: str) -> str | None:
    for item_key, value in metadata or ():
        if item_key == key:
            return str(value)
    return None
