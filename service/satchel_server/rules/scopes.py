"""Request validation, in one place for every RPC: scope, player id, permissions, TTL.

A request that fails here never reaches STS. A player id that could widen a RAM
policy is rejected, never escaped: escaping is where policy-injection bugs live.
"""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from satchel_server.config import PLAYER_PLACEHOLDER, POLICY_METACHARACTERS, ScopeSettings
from satchel_server.errors import InvalidArgument
from satchel_server.rules.characters import check_characters
from satchel_server.signing.encoding import MAX_KEY_BYTES
from satchel_server.vocabulary import HttpMethod, PlayerPermission

# Refused in a player id even when an operator's pattern would let them through: what
# means something inside a RAM policy, and the folder separator.
_POLICY_METACHARACTERS = POLICY_METACHARACTERS | {"/"}
# STS RoleSessionName: 2-64 of these. It lands in ActionTrail, so it names the player:
# "satchel-" + the id when the id is already a valid name; otherwise "satchel." + the
# id made valid and cut short + "." + a keyed hash of the whole id. A scope's own
# presigning credentials are "satchel@" + the scope's name; `satchel doctor`'s probes are
# DOCTOR_SESSION_NAME. The four differ in their eighth character, so no name of one
# kind can be taken by another.
_SESSION_NAME_SAFE = re.compile(r"[A-Za-z0-9.@_-]+")
_SESSION_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9.@_-]")
_SESSION_NAME_AS_IS = "satchel-"
_SESSION_NAME_HASHED = "satchel."
_SESSION_NAME_SCOPE = "satchel@"
DOCTOR_SESSION_NAME = "satchel_doctor"
_SESSION_NAME_MAX = 64
_SESSION_NAME_DIGEST_CHARS = 16  # 64 bits of HMAC-SHA256
# Longest player id, whatever the pattern: it appears three times in a session
# policy (STS caps those at 1024-2048 characters) and in every object key.
MAX_PLAYER_ID_CHARS = 128


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def check_player_id(scope: ScopeSettings, player_id: str) -> None:
    """Raise InvalidArgument unless `player_id` is safe and matches the scope's pattern.

    Every rule but the last holds whatever pattern the operator configures.
    """
    if not player_id:
        raise InvalidArgument("player_id", "is required")
    if len(player_id) > MAX_PLAYER_ID_CHARS:
        raise InvalidArgument(
            "player_id",
            f"is too long: {len(player_id)} characters, at most {MAX_PLAYER_ID_CHARS}",
        )
    check_characters("player_id", player_id)
    if not player_id.isascii():
        raise InvalidArgument("player_id", "must be ASCII")
    if bad := sorted(set(player_id) & _POLICY_METACHARACTERS):
        raise InvalidArgument("player_id", f"must not contain {bad[0]!r}")
    if player_id == "." or ".." in player_id:
        # players/./ and players/../ are traversals to every client that normalises paths.
        raise InvalidArgument("player_id", "must not be '.' or contain '..'")
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


@functools.cache
def permission_set(names: tuple[str, ...]) -> frozenset[PlayerPermission]:
    """Configured permission names as a set; a scope's few sets are built once."""
    return frozenset(PlayerPermission(name) for name in names)


@functools.cache
def permission_names(permissions: frozenset[PlayerPermission]) -> tuple[str, ...]:
    """The names in a stable order, for audit lines and responses."""
    return tuple(sorted(p.value for p in permissions))


def resolve_permissions(
    scope: ScopeSettings, asked: Iterable[PlayerPermission]
) -> frozenset[PlayerPermission]:
    """The scope's defaults when nothing is asked; else exactly what was asked, if allowed."""
    wanted = frozenset(asked) or permission_set(scope.default_permissions)
    allowed = permission_set(scope.permissions)
    if not wanted <= allowed:
        refused = sorted(p.value for p in wanted - allowed)
        raise InvalidArgument(
            "permissions", f"{refused[0]!r} is not allowed in scope {scope.name!r}"
        )
    return wanted


def _whole_seconds(field: str, asked: float | None, default: int, low: int, high: int) -> int:
    """`default` when unset; else `asked` as whole seconds within [low, high]."""
    if asked is None:
        return default
    if asked != int(asked):
        raise InvalidArgument(field, "must be a whole number of seconds")
    if not low <= asked <= high:
        raise InvalidArgument(field, f"must be between {low} and {high} seconds")
    return int(asked)


def check_bounded_writes(scope: ScopeSettings, permissions: frozenset[PlayerPermission]) -> None:
    """Refuse `write` credentials in a scope with a folder quota: nothing could bound them."""
    if scope.folder_quota_bytes and PlayerPermission.WRITE in permissions:
        raise InvalidArgument(
            "permissions",
            f"'write' is refused in scope {scope.name!r}, which has a folder quota: STS "
            "credentials cannot bound what they upload; presign uploads with PresignObject",
        )


def resolve_ttl(scope: ScopeSettings, asked_seconds: float | None) -> int:
    """The scope's default when unset; else whole seconds within the scope's bounds."""
    return _whole_seconds(
        "ttl",
        asked_seconds,
        scope.ttl_default_seconds,
        scope.ttl_min_seconds,
        scope.ttl_max_seconds,
    )


def role_session_name(player_id: str, key: bytes) -> str:
    """A valid STS RoleSessionName that shows in Alibaba's audit trail who acted.

    One-to-one: two player ids never share a name. `key` keys the hash added to an
    id that had to be rewritten; the same key on every replica gives a player the
    same name everywhere, and keeps anyone without it from crafting a collision.
    """
    name = _SESSION_NAME_AS_IS + player_id
    if len(name) <= _SESSION_NAME_MAX and _SESSION_NAME_SAFE.fullmatch(player_id):
        return name
    whole = player_id.encode("utf-8", "surrogatepass")
    digest = hmac.new(key, whole, "sha256").hexdigest()[:_SESSION_NAME_DIGEST_CHARS]
    room = _SESSION_NAME_MAX - len(_SESSION_NAME_HASHED) - 1 - len(digest)
    readable = _SESSION_NAME_UNSAFE.sub("-", player_id)[:room]
    return f"{_SESSION_NAME_HASHED}{readable}.{digest}"


def scope_session_name(scope_name: str) -> str:
    """The RoleSessionName of a scope's presigning credentials (scope names are valid ones)."""
    return (_SESSION_NAME_SCOPE + scope_name)[:_SESSION_NAME_MAX]


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """An IssueToken request after validation: every field is safe to act on."""

    scope: ScopeSettings
    player_id: str
    prefix: str
    permissions: frozenset[PlayerPermission]
    ttl_seconds: int


def validate_token_request(
    scopes: Mapping[str, ScopeSettings],
    *,
    scope_name: str,
    player_id: str,
    permissions: Iterable[PlayerPermission],
    ttl_seconds: float | None,
) -> TokenRequest:
    scope = resolve_scope(scopes, scope_name)
    check_player_id(scope, player_id)
    resolved = resolve_permissions(scope, permissions)
    check_bounded_writes(scope, resolved)
    return TokenRequest(
        scope=scope,
        player_id=player_id,
        prefix=player_prefix(scope, player_id),
        permissions=resolved,
        ttl_seconds=resolve_ttl(scope, ttl_seconds),
    )


# What a presigned operation needs the scope to allow.
METHOD_NEEDS: dict[HttpMethod, PlayerPermission] = {
    HttpMethod.GET: PlayerPermission.READ,
    HttpMethod.HEAD: PlayerPermission.READ,
    HttpMethod.PUT: PlayerPermission.WRITE,
    HttpMethod.POST: PlayerPermission.WRITE,
    HttpMethod.DELETE: PlayerPermission.DELETE,
}
MAX_CONTENT_TYPE_CHARS = 255
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;\s*[ -~]*)?")


def check_object_key(prefix: str, key: str) -> str:
    """The full key (prefix + key) when `key` is a safe name inside the player's folder."""
    if not key:
        raise InvalidArgument("key", "is required")
    check_characters("key", key)
    if "${" in key:
        # OSS fills ${filename} (and other variables) in a POST form's key after
        # checking the policy: the uploader would choose the object's name.
        raise InvalidArgument("key", "must not contain '${'")
    if "\\" in key:
        raise InvalidArgument("key", "must not contain '\\'")
    if key.startswith("/"):
        raise InvalidArgument("key", "must be relative to the player's folder: no leading '/'")
    for segment in key.split("/"):
        if segment == "":
            raise InvalidArgument("key", "must not contain empty segments ('//' or a trailing '/')")
        if segment in (".", ".."):
            raise InvalidArgument("key", "must not contain '.' or '..' segments")
    full_key = prefix + key
    try:
        size = len(full_key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument("key", "must be valid UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise InvalidArgument(
            "key", f"makes a full key of {size} bytes; OSS allows at most {MAX_KEY_BYTES}"
        )
    return full_key


def resolve_expires(scope: ScopeSettings, asked_seconds: float | None) -> int:
    """The scope's default when unset; else 1 s up to the scope's cap (never over 7 days)."""
    return _whole_seconds(
        "expires_in",
        asked_seconds,
        scope.presign_expires_default_seconds,
        1,
        scope.presign_expires_max_seconds,
    )


def check_content_type(method: HttpMethod, content_type: str) -> str | None:
    if not content_type:
        return None
    if method not in (HttpMethod.PUT, HttpMethod.POST):
        raise InvalidArgument("content_type", "applies to PUT and POST only")
    if len(content_type) > MAX_CONTENT_TYPE_CHARS or not _CONTENT_TYPE.fullmatch(content_type):
        raise InvalidArgument("content_type", "must be a media type such as image/png")
    return content_type


def resolve_max_size(scope: ScopeSettings, method: HttpMethod, asked: int) -> int | None:
    """POST's upload cap in bytes: the scope's default for 0, never above its cap."""
    if method is not HttpMethod.POST:
        return None
    if asked < 0:
        raise InvalidArgument("max_size", "must not be negative")
    if asked == 0:
        return scope.post_max_size_default_bytes
    if asked > scope.post_max_size_cap_bytes:
        raise InvalidArgument(
            "max_size",
            f"must be at most {scope.post_max_size_cap_bytes} bytes in scope {scope.name!r}",
        )
    return asked


def resolve_content_length(
    scope: ScopeSettings, method: HttpMethod, asked: int | None
) -> int | None:
    """A PUT's exact body size, which its URL signs: required, 0 up to the scope's upload cap."""
    if method is not HttpMethod.PUT:
        if asked is not None:
            raise InvalidArgument("content_length", "applies to PUT only (POST uses max_size)")
        return None
    if scope.presign_signature != "v4":
        raise InvalidArgument(
            "method",
            f"PUT cannot be size-capped in scope {scope.name!r}, which signs with V1: "
            "upload with POST (max_size), or use a V4 scope",
        )
    if asked is None:
        raise InvalidArgument("content_length", "is required for PUT: the body's size in bytes")
    if asked < 0:
        raise InvalidArgument("content_length", "must not be negative")
    if asked > scope.post_max_size_cap_bytes:
        raise InvalidArgument(
            "content_length",
            f"must be at most {scope.post_max_size_cap_bytes} bytes in scope {scope.name!r}",
        )
    return asked


# The most items one PresignObjects call may carry.
MAX_PRESIGN_ITEMS = 100


@dataclass(frozen=True, slots=True)
class PresignSubject:
    """Whose folder, in which scope: what every item of a presign request shares, validated."""

    scope: ScopeSettings
    player_id: str
    prefix: str


@dataclass(frozen=True, slots=True)
class PresignRequest:
    """One object to presign, after validation."""

    scope: ScopeSettings
    player_id: str
    prefix: str
    key: str  # the full key, prefix included
    method: HttpMethod
    expires_seconds: int
    content_type: str | None
    max_size: int | None
    forbid_overwrite: bool
    content_length: int | None = None  # PUT only: the exact size its URL signs

    @property
    def upload_cap(self) -> int | None:
        """The most this upload may add to the folder (None: not an upload)."""
        return self.content_length if self.method is HttpMethod.PUT else self.max_size


def validate_presign_subject(
    scopes: Mapping[str, ScopeSettings], *, scope_name: str, player_id: str
) -> PresignSubject:
    scope = resolve_scope(scopes, scope_name)
    check_player_id(scope, player_id)
    return PresignSubject(scope, player_id, player_prefix(scope, player_id))


def check_item_count(count: int) -> None:
    """A PresignObjects call carries 1..MAX_PRESIGN_ITEMS items."""
    if not 1 <= count <= MAX_PRESIGN_ITEMS:
        raise InvalidArgument("items", f"must hold 1 to {MAX_PRESIGN_ITEMS} items; got {count}")


def validate_presign_item(
    subject: PresignSubject,
    *,
    key: str,
    method: HttpMethod | None,
    expires_seconds: float | None,
    content_type: str,
    max_size: int,
    forbid_overwrite: bool,
    content_length: int | None = None,
) -> PresignRequest:
    """One object of `subject`'s folder; InvalidArgument names the field as PresignObject's."""
    scope = subject.scope
    full_key = check_object_key(subject.prefix, key)
    if method is None:
        raise InvalidArgument("method", "is required: GET, PUT, HEAD, DELETE or POST")
    needed = METHOD_NEEDS[method]
    if needed.value not in scope.permissions:
        raise InvalidArgument(
            "method",
            f"{method.value} needs {needed.value!r}, which scope {scope.name!r} does not allow",
        )
    if forbid_overwrite and method not in (HttpMethod.PUT, HttpMethod.POST):
        raise InvalidArgument("forbid_overwrite", "applies to PUT and POST only")
    return PresignRequest(
        scope=scope,
        player_id=subject.player_id,
        prefix=subject.prefix,
        key=full_key,
        method=method,
        expires_seconds=resolve_expires(scope, expires_seconds),
        content_type=check_content_type(method, content_type),
        max_size=resolve_max_size(scope, method, max_size),
        forbid_overwrite=forbid_overwrite,
        content_length=resolve_content_length(scope, method, content_length),
    )


def validate_presign_request(
    scopes: Mapping[str, ScopeSettings],
    *,
    scope_name: str,
    player_id: str,
    key: str,
    method: HttpMethod | None,
    expires_seconds: float | None,
    content_type: str,
    max_size: int,
    forbid_overwrite: bool,
    content_length: int | None = None,
) -> PresignRequest:
    subject = validate_presign_subject(scopes, scope_name=scope_name, player_id=player_id)
    return validate_presign_item(
        subject,
        key=key,
        method=method,
        expires_seconds=expires_seconds,
        content_type=content_type,
        max_size=max_size,
        forbid_overwrite=forbid_overwrite,
        content_length=content_length,
    )
