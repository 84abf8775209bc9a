"""Request validation, in one place for every RPC: scope, player id, permissions, TTL.

A request that fails here never reaches STS. A player id that could widen a RAM
policy is rejected, never escaped: escaping is where policy-injection bugs live.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from service.config import PLAYER_PLACEHOLDER, ScopeSettings
from service.errors import InvalidArgument


class Permission(enum.Enum):
    READ = "read"
    WRITE = "write"
    LIST = "list"
    DELETE = "delete"


# Characters that mean something inside a RAM policy or a path, refused even when
# an operator's pattern would let them through: wildcards (* ?), policy variables
# (${...}), JSON string delimiters (" \), the folder separator (/).
_POLICY_METACHARACTERS = frozenset('*?${}"\\/')
# STS RoleSessionName: 2-64 of these. It lands in ActionTrail, so it names the player.
_SESSION_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9.@_-]")
_SESSION_NAME_PREFIX = "satchel-"
_SESSION_NAME_MAX = 64


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def check_player_id(scope: ScopeSettings, player_id: str) -> None:
    """Raise InvalidArgument unless `player_id` is safe and matches the scope's pattern."""
    if not player_id:
        raise InvalidArgument("player_id", "is required")
    if not player_id.isascii() or not player_id.isprintable():
        raise InvalidArgument("player_id", "must be printable ASCII")
    if bad := sorted(set(player_id) & _POLICY_METACHARACTERS):
        raise InvalidArgument("player_id", f"must not contain {bad[0]!r}")
    if ".." in player_id:
        raise InvalidArgument("player_id", "must not contain '..'")
    if not _compiled(scope.player_id_pattern).fullmatch(player_id):
        raise InvalidArgument(
            "player_id", f"must match the scope's pattern {scope.player_id_pattern}"
        )


def player_prefix(scope: ScopeSettings, player_id: str) -> str:
    """The player's folder, ending in '/'. Call only with a checked player id."""
    return scope.prefix_template.replace(PLAYER_PLACEHOLDER, player_id)


def resolve_scope(scopes: Mapping[str, ScopeSettings], name: str) -> ScopeSettings:
    if not name:
        for scope in scopes.values():
            if scope.default:
                return scope
        raise InvalidArgument("scope", "is required: this server has no default scope")
    if name not in scopes:
        raise InvalidArgument("scope", f"unknown scope {name!r}")
    return scopes[name]


def resolve_permissions(scope: ScopeSettings, asked: Iterable[Permission]) -> frozenset[Permission]:
    """The scope's defaults when nothing is asked; else exactly what was asked, if allowed."""
    wanted = frozenset(asked) or frozenset(Permission(p) for p in scope.default_permissions)
    allowed = {Permission(p) for p in scope.permissions}
    if refused := sorted(p.value for p in wanted - allowed):
        raise InvalidArgument(
            "permissions", f"{refused[0]!r} is not allowed in scope {scope.name!r}"
        )
    return wanted


def resolve_ttl(scope: ScopeSettings, asked_seconds: float | None) -> int:
    """The scope's default when unset; else whole seconds within the scope's bounds."""
    if asked_seconds is None:
        return scope.ttl_default_seconds
    if asked_seconds != int(asked_seconds):
        raise InvalidArgument("ttl", "must be a whole number of seconds")
    seconds = int(asked_seconds)
    if not scope.ttl_min_seconds <= seconds <= scope.ttl_max_seconds:
        raise InvalidArgument(
            "ttl",
            f"must be between {scope.ttl_min_seconds} and {scope.ttl_max_seconds} seconds "
            f"in scope {scope.name!r}",
        )
    return seconds


def role_session_name(player_id: str) -> str:
    """A valid STS RoleSessionName that shows in Alibaba's audit trail who acted.

    Player ids are usually already valid; any other character becomes '-', and a
    name too long for STS keeps its start plus a short hash so it stays distinct.
    """
    name = _SESSION_NAME_PREFIX + _SESSION_NAME_UNSAFE.sub("-", player_id)
    if len(name) > _SESSION_NAME_MAX:
        digest = hashlib.sha256(player_id.encode()).hexdigest()[:12]
        name = name[: _SESSION_NAME_MAX - len(digest) - 1] + "-" + digest
    return name


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """An IssueToken request after validation: every field is safe to act on."""

    scope: ScopeSettings
    player_id: str
    prefix: str
    permissions: frozenset[Permission]
    ttl_seconds: int


def validate_token_request(
    scopes: Mapping[str, ScopeSettings],
    *,
    scope_name: str,
    player_id: str,
    permissions: Iterable[Permission],
    ttl_seconds: float | None,
) -> TokenRequest:
    scope = resolve_scope(scopes, scope_name)
    check_player_id(scope, player_id)
    return TokenRequest(
        scope=scope,
        player_id=player_id,
        prefix=player_prefix(scope, player_id),
        permissions=resolve_permissions(scope, permissions),
        ttl_seconds=resolve_ttl(scope, ttl_seconds),
    )
