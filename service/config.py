"""One frozen, validated settings object, loaded from TOML and the environment.

Every default lives here, next to the rule that checks it. A bad file stops the
start with a ConfigError naming the key (`section.key`) and the problem; nothing
is silently ignored, so a misspelt key is an error, not a default.

Secrets never come from the file: the Alibaba Cloud access key is read from the
environment variables the official SDKs read.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.errors import ConfigError

CONFIG_PATH_ENV = "SATCHEL_CONFIG"
ACCESS_KEY_ID_ENV = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ACCESS_KEY_SECRET_ENV = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"  # noqa: S105 - a variable name

Check = Callable[[Any], str | None]
"""Returns None when the value is acceptable, else the problem in a few words."""


def _setting(default: Any, check: Check | None = None) -> Any:
    return field(default=default, metadata={"check": check})


def parse_listen_address(value: str) -> tuple[str, int]:
    """Split `host:port` or `[v6]:port`; raises ValueError saying what is wrong."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError("expected HOST:PORT, for example 127.0.0.1:50051 or [::1]:50051")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port {port} is above 65535")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError("an IPv6 host must be written [addr]")
        ipaddress.IPv6Address(host[1:-1])
    return host, port


def _check_listen(value: str) -> str | None:
    try:
        parse_listen_address(value)
    except ValueError as exc:
        return str(exc)
    return None


def _between(low: float, high: float) -> Check:
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"must be between {low:g} and {high:g}"

    return check


def _one_of(*choices: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The `[server]` table."""

    # Where the gRPC server listens. Port 0 picks a free port (tests).
    listen: str = _setting("127.0.0.1:50051", _check_listen)
    # On SIGTERM/SIGINT: how long in-flight calls may run before they are cancelled.
    grace_seconds: float = _setting(10.0, _between(0, 3600))
    # Largest request or response message. Satchel's messages are a few KiB;
    # a small cap keeps a hostile peer from making the server buffer megabytes.
    max_message_bytes: int = _setting(64 * 1024, _between(4 * 1024, 4 * 1024 * 1024))
    # gRPC server reflection (what grpcurl uses to discover the API).
    # Off by default in production; `satchel dev` turns it on.
    reflection: bool = _setting(False)


@dataclass(frozen=True, slots=True)
class LogSettings:
    """The `[log]` table."""

    level: str = _setting("INFO", _one_of("DEBUG", "INFO", "WARNING", "ERROR"))


@dataclass(frozen=True, slots=True)
class AccessKey:
    """A RAM user's long-lived key, used to call STS AssumeRole. Never printed."""

    access_key_id: str
    access_key_secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    log: LogSettings = field(default_factory=LogSettings)
    # From the environment only; None when neither variable is set.
    access_key: AccessKey | None = None
    # Where the settings came from, for the start-up log line.
    source: str = "defaults"


_SECTIONS: dict[str, type[Any]] = {"server": ServerSettings, "log": LogSettings}


def _type_problem(expected: type[Any], value: object) -> str | None:
    # TOML has distinct integers and floats; accept an integer where a number of
    # seconds is wanted, but never a bool where a number is (bool is an int subclass).
    if isinstance(value, bool) and expected is not bool:
        return f"expected {expected.__name__}, got a boolean"
    if expected is float and isinstance(value, int | float):
        return None
    if isinstance(value, expected):
        return None
    return f"expected {expected.__name__}, got {type(value).__name__}"


def _build_section(name: str, cls: type[Any], table: object) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(name, "must be a table, for example [" + name + "]")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{name}.{key}"
        spec = known.get(key)
        if spec is None:
            raise ConfigError(dotted, f"unknown key (known keys: {', '.join(sorted(known))})")
        problem = _type_problem(hints[key], value)
        check: Check | None = spec.metadata.get("check")
        if problem is None and check is not None:
            problem = check(value)
        if problem is not None:
            raise ConfigError(dotted, problem)
        values[key] = float(value) if hints[key] is float else value
    return cls(**values)


def _access_key_from(environ: Mapping[str, str]) -> AccessKey | None:
    key_id = environ.get(ACCESS_KEY_ID_ENV, "")
    secret = environ.get(ACCESS_KEY_SECRET_ENV, "")
    if not key_id and not secret:
        return None
    for name, value, other in (
        (ACCESS_KEY_ID_ENV, key_id, ACCESS_KEY_SECRET_ENV),
        (ACCESS_KEY_SECRET_ENV, secret, ACCESS_KEY_ID_ENV),
    ):
        if not value:
            raise ConfigError(name, f"is empty or unset while {other} is set")
    return AccessKey(key_id, secret)


def settings_from_mapping(
    document: Mapping[str, object], environ: Mapping[str, str], source: str = "mapping"
) -> Settings:
    """Validate a parsed TOML document (and the environment) into Settings."""
    sections: dict[str, Any] = {}
    for name, table in document.items():
        cls = _SECTIONS.get(name)
        if cls is None:
            raise ConfigError(name, f"unknown section (known: {', '.join(sorted(_SECTIONS))})")
        sections[name] = _build_section(name, cls, table)
    return Settings(**sections, access_key=_access_key_from(environ), source=source)


def load_settings(path: Path | None, environ: Mapping[str, str]) -> Settings:
    """Load from `path`, else from $SATCHEL_CONFIG, else the defaults."""
    if path is None and environ.get(CONFIG_PATH_ENV):
        path = Path(environ[CONFIG_PATH_ENV])
    if path is None:
        return settings_from_mapping({}, environ, source="defaults")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--config", f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None
    return settings_from_mapping(document, environ, source=str(path))
