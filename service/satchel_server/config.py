"""One frozen, validated settings object, loaded from TOML and the environment.

Every default lives here, next to the rule that checks it. A bad file stops the
start with a ConfigError naming the key (`section.key`) and the problem; nothing
is silently ignored, so a misspelt key is an error, not a default.

Secrets never come from the file: the Alibaba Cloud access key is read from the
environment variables the official SDKs read.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import re
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satchel_server.errors import ConfigError
from satchel_server.signing.request import BUCKET_NAME
from satchel_server.signing.timefmt import MAX_EXPIRES
from satchel_server.vocabulary import METHOD_NAMES, PERMISSION_NAMES

CONFIG_PATH_ENV = "SATCHEL_CONFIG"
ACCESS_KEY_ID_ENV = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ACCESS_KEY_SECRET_ENV = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"  # noqa: S105 - a variable name
# The rest of the Alibaba Cloud credential chain's variables, as the official SDKs name them.
SECURITY_TOKEN_ENV = "ALIBABA_CLOUD_SECURITY_TOKEN"  # noqa: S105 - a variable name
ROLE_ARN_ENV = "ALIBABA_CLOUD_ROLE_ARN"
OIDC_PROVIDER_ARN_ENV = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"
OIDC_TOKEN_FILE_ENV = "ALIBABA_CLOUD_OIDC_TOKEN_FILE"  # noqa: S105 - a variable name
ROLE_SESSION_NAME_ENV = "ALIBABA_CLOUD_ROLE_SESSION_NAME"
ECS_ROLE_NAME_ENV = "ALIBABA_CLOUD_ECS_METADATA"
ECS_METADATA_DISABLED_ENV = "ALIBABA_CLOUD_ECS_METADATA_DISABLED"
IMDSV1_DISABLED_ENV = "ALIBABA_CLOUD_IMDSV1_DISABLED"
CREDENTIALS_URI_ENV = "ALIBABA_CLOUD_CREDENTIALS_URI"
# The shared cache's AES-256-GCM keys, "ID:BASE64[,ID:BASE64...]" (the first encrypts),
# and Redis's password: from the environment only, like the access key.
CACHE_KEYS_ENV = "SATCHEL_CACHE_KEYS"
REDIS_PASSWORD_ENV = "SATCHEL_REDIS_PASSWORD"  # noqa: S105 - a variable name
# Keys the hash in the RoleSessionName of a player id that had to be rewritten (see
# rules.scopes.role_session_name). The same value on every replica gives a player one
# name in ActionTrail; unset, each process picks a random key.
SESSION_NAME_KEY_ENV = "SATCHEL_SESSION_NAME_KEY"
SESSION_NAME_KEY_MIN_CHARS = 16

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
    # Largest request message. Satchel's requests are a few KiB (a PresignObjects
    # call of 100 items with short keys, tens); a small cap keeps a hostile peer
    # from making the server buffer megabytes. Responses have a cap of their own
    # (api.server.MAX_RESPONSE_BYTES): they are Satchel's to size.
    max_message_bytes: int = _setting(64 * 1024, _between(4 * 1024, 4 * 1024 * 1024))
    # gRPC server reflection (what grpcurl uses to discover the API).
    # Off by default in production; `satchel dev` turns it on.
    reflection: bool = _setting(False)
    # RPCs served at once; beyond this a call is refused with RESOURCE_EXHAUSTED
    # at once rather than queued behind the others.
    max_concurrent_rpcs: int = _setting(1000, _between(1, 100_000))
    # Deadlines longer than this (or none at all) are treated as this long.
    max_deadline_seconds: float = _setting(30.0, _between(1, 600))
    # Connections are closed (gracefully) after this long, so clients reconnect and
    # the load spreads over replicas added since; the grace lets calls finish.
    max_connection_age_seconds: float = _setting(300.0, _between(10, 86400))
    max_connection_age_grace_seconds: float = _setting(30.0, _between(1, 3600))
    # Keepalive: the server pings idle connections this often, and refuses clients
    # that ping it more often than that (HTTP/2 GOAWAY "too_many_pings").
    keepalive_seconds: float = _setting(60.0, _between(10, 3600))
    # A second, plaintext listener serving only the health service, for probes and
    # `satchel health` when the main port needs TLS or client certificates.
    # Empty: none. Keep it on loopback (or a pod-internal address).
    health_listen: str = _setting("", lambda value: _check_listen(value) if value else None)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """The `[metrics]` table."""

    # Prometheus metrics over HTTP at /metrics on this address. Empty: not served.
    listen: str = _setting("", lambda value: _check_listen(value) if value else None)


@dataclass(frozen=True, slots=True)
class LogSettings:
    """The `[log]` table."""

    level: str = _setting("INFO", _one_of("DEBUG", "INFO", "WARNING", "ERROR"))
    # json: one JSON object per line (for log shippers); text: for a terminal.
    # Both are scrubbed of anything shaped like a secret.
    format: str = _setting("json", _one_of("json", "text"))


_REGION = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_ROLE_ARN = re.compile(r"acs:ram::\d+:role/[A-Za-z0-9._-]{1,64}")
_ENDPOINT = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?")
PLAYER_PLACEHOLDER = "{player_id}"
STS_MIN_DURATION_SECONDS = 900  # AssumeRole refuses a shorter DurationSeconds
# A presigned URL dies this long before the credentials that signed it, so clock
# skew between Satchel, the player's device and OSS never makes it die early.
SIGNER_MARGIN_SECONDS = 60
# Signing credentials are refreshed once their life falls below the longest URL plus
# the margin; they must start with at least this much more, or the refresh would
# have no time to happen before URLs had to be shortened.
SIGNER_REFRESH_WINDOW_SECONDS = 300


def _matches(regex: re.Pattern[str], example: str) -> Check:
    def check(value: str) -> str | None:
        return None if regex.fullmatch(value) else f"must look like {example}"

    return check


_KEY_PREFIX = re.compile(r"[A-Za-z0-9:_.-]{1,64}")
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")


def _check_redis_url(value: str) -> str | None:
    # The value is never echoed: a URL may carry a password despite the advice.
    if value == "" or value.startswith(("redis://", "rediss://")):
        return None
    return "must start with redis:// or rediss:// (or be empty: no shared cache)"


def _check_pattern(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"is not a valid regular expression: {exc}"
    return None


def _check_permissions(value: tuple[str, ...]) -> str | None:
    unknown = sorted(set(value) - set(PERMISSION_NAMES))
    if unknown:
        return f"unknown permission {unknown[0]!r} (known: {', '.join(PERMISSION_NAMES)})"
    return None


# Characters with a meaning in RAM policy strings (wildcards, variables, quoting): a
# prefix template or a player id that holds one could widen a policy, so it is refused.
POLICY_METACHARACTERS = frozenset('*?${}"\\')


def _check_prefix_template(value: str) -> str | None:
    static = value.replace(PLAYER_PLACEHOLDER, "x", 1)  # "x": a real id is never empty
    if value.count(PLAYER_PLACEHOLDER) != 1:
        return f"must contain {PLAYER_PLACEHOLDER} exactly once"
    if not value.endswith("/") or value.startswith("/"):
        return "must end with '/' and must not start with '/'"
    if any(ch in static for ch in POLICY_METACHARACTERS) or "//" in static:
        return "must not contain wildcards, braces, quotes, backslashes or '//'"
    if any(segment in (".", "..") for segment in value.split("/")):
        return "must not contain '.' or '..' segments"
    return None


# `default` tries the others in this order and uses the first that yields credentials.
IDENTITY_SOURCES = ("default", "env", "oidc", "ecs_ram_role", "credentials_uri")


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    """The `[identity]` table: where Satchel's own credentials (to call STS with) come from.

    Each source reads the official SDKs' environment variables; see docs/operations.md.
    """

    # default (the chain), env, oidc (RRSA), ecs_ram_role or credentials_uri.
    source: str = _setting("default", _one_of(*IDENTITY_SOURCES))
    # The ECS metadata service. The cloud's is http://100.100.100.200.
    metadata_endpoint: str = _setting(
        "http://100.100.100.200", _matches(_ENDPOINT, "http://100.100.100.200")
    )
    # How long AssumeRoleWithOIDC's credentials last (up to the role's MaxSessionDuration).
    oidc_duration_seconds: int = _setting(3600, _between(STS_MIN_DURATION_SECONDS, 43200))
    # Per call to the metadata service, the credentials URI or AssumeRoleWithOIDC.
    timeout_seconds: float = _setting(5.0, _between(0.1, 60))


@dataclass(frozen=True, slots=True)
class IdentityEnvironment:
    """The credential chain's non-secret variables, read once from the environment."""

    role_arn: str = ""
    oidc_provider_arn: str = ""
    oidc_token_file: str = ""
    role_session_name: str = ""
    ecs_role_name: str = ""
    ecs_metadata_disabled: bool = False
    imdsv1_disabled: bool = False
    credentials_uri: str = ""


@dataclass(frozen=True, slots=True)
class ScopeSettings:
    """One `[scopes.NAME]` table: where a family of player folders lives and who may do what.

    Fields without a default are required.
    """

    name: str
    # OSS bucket that holds the player folders.
    bucket: str = _setting(dataclasses.MISSING, _matches(BUCKET_NAME, "my-game-saves"))
    # OSS region id, for example cn-hangzhou.
    region: str = _setting(dataclasses.MISSING, _matches(_REGION, "cn-hangzhou"))
    # The RAM role Satchel assumes for this scope.
    role_arn: str = _setting(
        dataclasses.MISSING, _matches(_ROLE_ARN, "acs:ram::1234567890123456:role/satchel-saves")
    )
    # The OSS endpoint that players' apps use, as a URL without a path.
    endpoint: str = _setting(
        dataclasses.MISSING, _matches(_ENDPOINT, "https://oss-cn-hangzhou.aliyuncs.com")
    )
    # virtual-hosted (bucket.endpoint/key) or path (endpoint/bucket/key).
    addressing: str = _setting("virtual-hosted", _one_of("virtual-hosted", "path"))
    # Where a player's folder is; {player_id} appears exactly once; ends with "/".
    prefix_template: str = _setting("players/" + PLAYER_PLACEHOLDER + "/", _check_prefix_template)
    # The ExternalId the role's trust policy demands, if any.
    external_id: str = _setting("")
    # What callers may ask for in this scope, and what they get when they ask for nothing.
    permissions: tuple[str, ...] = _setting(PERMISSION_NAMES, _check_permissions)
    default_permissions: tuple[str, ...] = _setting(("read",), _check_permissions)
    # Credential lifetime bounds in seconds; never below STS's 900.
    ttl_min_seconds: int = _setting(900, _between(STS_MIN_DURATION_SECONDS, 43200))
    ttl_default_seconds: int = _setting(3600, _between(STS_MIN_DURATION_SECONDS, 43200))
    ttl_max_seconds: int = _setting(3600, _between(STS_MIN_DURATION_SECONDS, 43200))
    # Player ids must match this whole; characters that could widen a policy
    # are refused whatever it says.
    player_id_pattern: str = _setting(r"^[A-Za-z0-9_-]{1,64}$", _check_pattern)
    # STS's cap on the session policy: 2048 characters (1024 on older accounts).
    policy_max_chars: int = _setting(2048, _between(256, 2048))
    # PresignObject: how URLs and POST forms are signed and how long they may live.
    # v4 (OSS4-HMAC-SHA256, the default) or v1 (HMAC-SHA1, for old clients).
    presign_signature: str = _setting("v4", _one_of("v4", "v1"))
    presign_expires_default_seconds: int = _setting(900, _between(1, MAX_EXPIRES))
    presign_expires_max_seconds: int = _setting(1800, _between(1, MAX_EXPIRES))
    # Uploads: a POST form's size cap when a request gives none, and the most any upload
    # may be (a POST's max_size, a PUT's content_length).
    post_max_size_default_bytes: int = _setting(10 * 1024 * 1024, _between(1, 5 * 1024**3))
    post_max_size_cap_bytes: int = _setting(100 * 1024 * 1024, _between(1, 5 * 1024**3))
    # The most a player's folder may hold, in bytes; 0: no quota. Where set, uploads
    # are presigned only while the folder has room (measured with ListObjectsV2 on the
    # scope's presigning credentials), and IssueToken refuses `write`.
    folder_quota_bytes: int = _setting(0, _between(0, 2**50))
    # Folder usage lookups (each one or more ListObjectsV2 calls) per second for the
    # scope, with a burst of one second's worth; beyond it uploads wait for a retry.
    folder_lookups_per_second: float = _setting(10.0, _between(0.1, 10_000))
    # Presigning signs with scope-level STS credentials (one AssumeRole per refresh,
    # never per request), lasting this long; or, when true, with the RAM user's own
    # key (URLs then outlive any STS session; off by default).
    signer_ttl_seconds: int = _setting(3600, _between(STS_MIN_DURATION_SECONDS, 43200))
    sign_with_access_key: bool = _setting(False)
    # The scope used when a request names none. With one scope, it is the default.
    default: bool = _setting(False)

    def problems(self) -> list[tuple[str, str]]:
        """Rules that span several keys, as (key, problem)."""
        found: list[tuple[str, str]] = []
        if not set(self.default_permissions) <= set(self.permissions):
            found.append(("default_permissions", "must be a subset of permissions"))
        if not self.default_permissions:
            found.append(("default_permissions", "must not be empty"))
        if not self.ttl_min_seconds <= self.ttl_default_seconds <= self.ttl_max_seconds:
            found.append(
                ("ttl_default_seconds", "must lie between ttl_min_seconds and ttl_max_seconds")
            )
        if self.presign_expires_default_seconds > self.presign_expires_max_seconds:
            found.append(
                ("presign_expires_default_seconds", "must not exceed presign_expires_max_seconds")
            )
        if self.post_max_size_default_bytes > self.post_max_size_cap_bytes:
            found.append(("post_max_size_default_bytes", "must not exceed post_max_size_cap_bytes"))
        if self.folder_quota_bytes and "write" in self.default_permissions:
            found.append(
                (
                    "default_permissions",
                    "must not include write where folder_quota_bytes is set: STS credentials "
                    "cannot be bounded, so uploads go through PresignObject",
                )
            )
        # Signing credentials are refreshed once their life falls below the longest URL
        # plus a margin; they must start with more than that or every request would wait.
        refresh_window = self.signer_ttl_seconds - (
            self.presign_expires_max_seconds + SIGNER_MARGIN_SECONDS
        )
        if not self.sign_with_access_key and refresh_window < SIGNER_REFRESH_WINDOW_SECONDS:
            found.append(
                (
                    "signer_ttl_seconds",
                    f"must exceed presign_expires_max_seconds by at least "
                    f"{SIGNER_MARGIN_SECONDS + SIGNER_REFRESH_WINDOW_SECONDS} s, so signer "
                    "credentials can be refreshed before URLs would have to be shortened",
                )
            )
        return found


@dataclass(frozen=True, slots=True)
class StsSettings:
    """The `[sts]` table: how Satchel calls STS AssumeRole."""

    # Real cloud: https://sts.aliyuncs.com or a regional one such as
    # https://sts.cn-hangzhou.aliyuncs.com. `satchel dev` points it at the emulator.
    endpoint: str = _setting(
        "https://sts.aliyuncs.com", _matches(_ENDPOINT, "https://sts.aliyuncs.com")
    )
    # rpc-v1 (HMAC-SHA1 "1.0") or acs3 (ACS3-HMAC-SHA256).
    signature: str = _setting("rpc-v1", _one_of("rpc-v1", "acs3"))
    # Per attempt; never beyond the caller's remaining deadline.
    connect_timeout_seconds: float = _setting(3.0, _between(0.1, 60))
    request_timeout_seconds: float = _setting(10.0, _between(0.1, 120))
    # Attempts per AssumeRole (1 = no retry), with full-jitter backoff between them.
    max_attempts: int = _setting(3, _between(1, 5))
    # AssumeRole budget: per process, or for the whole fleet with [cache] url.
    # Alibaba allows 100 calls/s per account, shared by every caller of that account.
    budget_per_second: float = _setting(90.0, _between(0.1, 100))


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """The `[cache]` table: the in-memory credential cache."""

    # Least-recently-used entries are evicted beyond this count.
    max_entries: int = _setting(100_000, _between(1, 10_000_000))
    # A cached credential is served only while its remaining life is at least this
    # share of the TTL asked for and at least min_remaining_seconds. Both stay below
    # what a fresh credential has (the TTL asked, less a moment), or a fresh one
    # could never be served: hence share <= 0.9 and seconds < STS's 900.
    min_remaining_share: float = _setting(0.5, _between(0, 0.9))
    min_remaining_seconds: int = _setting(300, _between(0, STS_MIN_DURATION_SECONDS - 60))
    # Shared across replicas (Redis): "redis://host:6379/0" or "rediss://..." (TLS).
    # Empty: each replica caches and budgets alone. The password comes from
    # SATCHEL_REDIS_PASSWORD, never from here; entries are encrypted with SATCHEL_CACHE_KEYS.
    url: str = _setting("", _check_redis_url)
    # Every Redis key starts with this: deployments sharing one Redis but not one
    # STS account must not share a budget.
    key_prefix: str = _setting("satchel:", _matches(_KEY_PREFIX, "satchel:"))
    # How long a replica serves a shared entry from memory before asking Redis again.
    l1_ttl_seconds: float = _setting(5.0, _between(0, 300))
    # Per Redis command: short, so a slow Redis cannot eat the caller's deadline.
    redis_timeout_seconds: float = _setting(0.1, _between(0.005, 5))
    # A replica minting a credential holds a fleet-wide lock, extended every third
    # of this while it works; a replica that dies releases it by expiry within this.
    lock_ttl_seconds: float = _setting(10.0, _between(1, 120))
    # While Redis is unreachable each replica spends [sts] budget_per_second divided by this.
    expected_replicas: int = _setting(1, _between(1, 1000))


@dataclass(frozen=True, slots=True)
class CacheSecrets:
    """The shared cache's secrets, from the environment only. Never printed."""

    # (key id, 32-byte AES-256-GCM key); the first encrypts, any decrypts.
    keys: tuple[tuple[str, bytes], ...] = field(repr=False)
    redis_password: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """The `[tls]` table: serve over TLS; with a client CA, require client certificates (mTLS)."""

    # PEM files. Both empty: plaintext gRPC (for loopback, or behind a TLS-terminating proxy).
    cert_file: str = _setting("")
    key_file: str = _setting("")
    # PEM CA bundle. Set: every client must present a certificate it signed, and
    # [callers.NAME] cert_sans map certificates to callers.
    client_ca_file: str = _setting("")

    def problems(self) -> list[tuple[str, str]]:
        if bool(self.cert_file) != bool(self.key_file):
            return [("key_file", "cert_file and key_file go together: set both or neither")]
        if self.client_ca_file and not self.cert_file:
            return [("client_ca_file", "client certificates need server TLS: set cert_file")]
        return []


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """The `[auth]` table."""

    # Without [callers], `satchel serve` refuses a non-loopback listen address unless
    # this says, on purpose, that anyone who can reach the port may mint credentials.
    allow_unauthenticated: bool = _setting(False)


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """The `[limits]` table: per-player token buckets (per-caller ones are in [callers.NAME])."""

    # Requests per second and burst per (scope, player); rate 0 turns the limit off.
    player_rate_per_second: float = _setting(5.0, _between(0, 1_000_000))
    player_burst: float = _setting(20.0, _between(1, 1_000_000))
    # Players whose buckets are remembered; the least recently seen are forgotten.
    players_tracked: int = _setting(100_000, _between(1, 10_000_000))


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """The `[audit]` table: one JSON line per decision."""

    # "stdout", or a file path (appended to).
    output: str = _setting("stdout", lambda v: None if v else "must not be empty")
    # How long an allowed call's line may wait to be written with others (one write for
    # many lines). A refusal's line never waits. 0: every line is written at once.
    flush_ms: float = _setting(20.0, _between(0, 1000))


BEARER_KEY_ENTRY = re.compile(r"[0-9a-f]{16}:sha256:[0-9a-f]{64}")


def _check_methods(value: tuple[str, ...]) -> str | None:
    unknown = sorted(set(value) - set(METHOD_NAMES))
    if unknown:
        return f"unknown method {unknown[0]!r} (known: {', '.join(METHOD_NAMES)})"
    return None


def _check_key_entries(value: tuple[str, ...]) -> str | None:
    for entry in value:
        if not BEARER_KEY_ENTRY.fullmatch(entry):
            return "each entry looks like KEYID:sha256:HEX, as printed by `satchel keygen`"
    return None


@dataclass(frozen=True, slots=True)
class GrantSettings:
    """One `[callers.NAME.scopes.SCOPE]` table: what a caller may do in one scope."""

    scope: str
    # IssueToken: the permissions it may ask for (or receive as the scope's default).
    permissions: tuple[str, ...] = _setting((), _check_permissions)
    # PresignObject: the HTTP methods it may presign.
    methods: tuple[str, ...] = _setting((), _check_methods)
    # Empty: any player the scope accepts; else player ids must also match this whole.
    player_id_pattern: str = _setting("", _check_pattern)

    def problems(self) -> list[tuple[str, str]]:
        if not self.permissions and not self.methods:
            return [("permissions", "a grant must allow some permissions or methods")]
        return []


@dataclass(frozen=True, slots=True)
class CallerSettings:
    """One `[callers.NAME]` table: a game server (fleet) that may ask, and what it may ask."""

    name: str
    # Bearer keys as KEYID:sha256:HEX (from `satchel keygen`); several while rotating.
    keys: tuple[str, ...] = _setting((), _check_key_entries)
    # Client-certificate SANs naming this caller: a URI (spiffe://...) or a DNS name.
    cert_sans: tuple[str, ...] = _setting(())
    # Requests per second and burst for this caller; rate 0 turns the limit off.
    rate_per_second: float = _setting(100.0, _between(0, 1_000_000))
    burst: float = _setting(200.0, _between(1, 1_000_000))
    # By scope name: the [callers.NAME.scopes.SCOPE] tables.
    scopes: Mapping[str, GrantSettings] = field(default_factory=dict)

    def problems(self) -> list[tuple[str, str]]:
        if not self.keys and not self.cert_sans:
            return [("keys", "a caller needs keys or cert_sans, or it can never be recognised")]
        return []


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An AccessKey from the environment: a RAM user's, or an STS one with its token."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    log: LogSettings = field(default_factory=LogSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    sts: StsSettings = field(default_factory=StsSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    # By name, in file order.
    scopes: Mapping[str, ScopeSettings] = field(default_factory=dict)
    tls: TlsSettings = field(default_factory=TlsSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    # By name. None configured: no caller authentication (see AuthSettings).
    callers: Mapping[str, CallerSettings] = field(default_factory=dict)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    # From the environment only; None when neither variable is set.
    access_key: AccessKey | None = None
    identity_env: IdentityEnvironment = field(default_factory=IdentityEnvironment)
    # From the environment only; None when SATCHEL_CACHE_KEYS is not set.
    cache_secrets: CacheSecrets | None = None
    # From the environment only; None when SATCHEL_SESSION_NAME_KEY is not set.
    session_name_key: bytes | None = field(default=None, repr=False)
    # Where the settings came from, for the start-up log line.
    source: str = "defaults"


# The single-table sections, by name (scopes and callers hold one table per name).
SECTIONS: dict[str, type[Any]] = {
    "server": ServerSettings,
    "log": LogSettings,
    "metrics": MetricsSettings,
    "sts": StsSettings,
    "cache": CacheSettings,
    "tls": TlsSettings,
    "auth": AuthSettings,
    "limits": LimitSettings,
    "audit": AuditSettings,
    "identity": IdentitySettings,
}
_SCOPE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def is_valid_name(name: str) -> bool:
    """Whether `name` may name a scope or a caller (a TOML bare key, 1-32 of a-z 0-9 _ -)."""
    return _SCOPE_NAME.fullmatch(name) is not None


def _type_problem(expected: Any, value: object) -> str | None:
    # TOML has distinct integers and floats; accept an integer where a number of
    # seconds is wanted, but never a bool where a number is (bool is an int subclass).
    if typing.get_origin(expected) is tuple:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return None
        return "expected a list of strings"
    if isinstance(value, bool) and expected is not bool:
        return f"expected {expected.__name__}, got a boolean"
    if expected is float and isinstance(value, int | float):
        return None
    if isinstance(value, expected):
        return None
    return f"expected {expected.__name__}, got {type(value).__name__}"


def _coerce(expected: Any, value: Any) -> Any:
    if expected is float:
        return float(value)
    if typing.get_origin(expected) is tuple:
        return tuple(dict.fromkeys(value))  # duplicates dropped, order kept
    return value


def _build_section(
    name: str, cls: type[Any], table: object, fixed: Mapping[str, Any] | None = None
) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(name, "must be a table, for example [" + name + "]")
    hints = typing.get_type_hints(cls)
    fixed = fixed or {}
    known = {f.name: f for f in dataclasses.fields(cls) if f.name not in fixed}
    values: dict[str, Any] = dict(fixed)
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
        values[key] = _coerce(hints[key], value)
    for key, spec in known.items():
        if key not in values and spec.default is dataclasses.MISSING:
            raise ConfigError(f"{name}.{key}", "is required")
    built = cls(**values)
    for key, problem in getattr(built, "problems", list)():
        raise ConfigError(f"{name}.{key}", problem)
    return built


def _build_scopes(table: object) -> dict[str, ScopeSettings]:
    if not isinstance(table, dict) or not table:
        raise ConfigError("scopes", "must hold at least one [scopes.NAME] table")
    scopes: dict[str, ScopeSettings] = {}
    for name, scope_table in table.items():
        if not _SCOPE_NAME.fullmatch(name):
            raise ConfigError(f"scopes.{name}", "a scope name is 1-32 of a-z 0-9 _ -")
        scopes[name] = _build_section(f"scopes.{name}", ScopeSettings, scope_table, {"name": name})
    defaults = [s.name for s in scopes.values() if s.default]
    if len(scopes) == 1 and not defaults:
        only = next(iter(scopes.values()))
        scopes[only.name] = dataclasses.replace(only, default=True)
    elif len(defaults) != 1:
        raise ConfigError("scopes", f"exactly one scope must say default = true, not {defaults}")
    _check_quota_folders_apart(scopes)
    _check_players_apart(scopes)
    return scopes


def _folders_may_meet(one: ScopeSettings, other: ScopeSettings) -> bool:
    """Whether a player folder of one scope can hold, or lie in, a folder of the other."""
    if one.bucket != other.bucket:
        return False
    head, _, tail = one.prefix_template.partition(PLAYER_PLACEHOLDER)
    other_head, _, other_tail = other.prefix_template.partition(PLAYER_PLACEHOLDER)
    if head == other_head and tail.startswith("/") and other_tail.startswith("/"):
        # A player id holds no '/': the folders meet only for one id, and only when
        # one tail extends the other ("players/{id}/" holds "players/{id}/shots/").
        return tail.startswith(other_tail) or other_tail.startswith(tail)
    # "players/{id}/" holds "players/vip/{id}/" (the id "vip"); unequal heads that
    # neither extends are apart.
    return head.startswith(other_head) or other_head.startswith(head)


def _other_players_may_meet(one: ScopeSettings, other: ScopeSettings) -> bool:
    """Whether one player's folder in `one` can hold, or lie in, another player's in `other`.

    Folders of the same player may nest ("players/{id}/" and "players/{id}/shots/"); a
    player id that is a folder name of the other scope may not ("players/{id}/" against
    "players/vip/{id}/": the player "vip" would reach every player of the other scope).
    """
    head, _, tail = one.prefix_template.partition(PLAYER_PLACEHOLDER)
    other_head, _, other_tail = other.prefix_template.partition(PLAYER_PLACEHOLDER)
    if one.bucket == other.bucket and head == other_head:
        # A player id holds no '/': two ids' folders can meet only where the text from
        # the id to the next '/' differs in length ("{id}-a/" holds id "x", "{id}/" id "x-a").
        return tail.index("/") != other_tail.index("/")
    return _folders_may_meet(one, other)


def _check_players_apart(scopes: Mapping[str, ScopeSettings]) -> None:
    """No scope's player folder may reach another player's folder of another scope."""
    for scope in scopes.values():
        for other in scopes.values():
            if other.name != scope.name and _other_players_may_meet(scope, other):
                raise ConfigError(
                    f"scopes.{scope.name}.prefix_template",
                    f"a player's folder can hold or lie in another player's folder of scope "
                    f"{other.name!r} in bucket {scope.bucket!r}; give the scopes prefix "
                    "templates with the same text before {player_id}, or ones apart",
                )


def _check_quota_folders_apart(scopes: Mapping[str, ScopeSettings]) -> None:
    """A folder quota counts what its own scope presigns: no other scope may write there."""
    for scope in scopes.values():
        if not scope.folder_quota_bytes:
            continue
        for other in scopes.values():
            if other.name != scope.name and _folders_may_meet(scope, other):
                raise ConfigError(
                    f"scopes.{scope.name}.folder_quota_bytes",
                    f"scope {other.name!r} reaches the same player folders in bucket "
                    f"{scope.bucket!r}, and its uploads would not count against this quota; "
                    "give the scopes prefix templates that do not overlap",
                )


def _build_callers(table: object) -> dict[str, CallerSettings]:
    if not isinstance(table, dict):
        raise ConfigError("callers", "must hold [callers.NAME] tables")
    callers: dict[str, CallerSettings] = {}
    owners: dict[str, str] = {}  # key id or SAN -> the caller it names: each names one caller
    for name, caller_table in table.items():
        section = f"callers.{name}"
        if not _SCOPE_NAME.fullmatch(name) or not isinstance(caller_table, dict):
            raise ConfigError(section, "a [callers.NAME] table; NAME is 1-32 of a-z 0-9 _ -")
        grants_table = caller_table.get("scopes", {})
        if not isinstance(grants_table, dict) or not grants_table:
            raise ConfigError(f"{section}.scopes", "must hold [callers.NAME.scopes.SCOPE] tables")
        grants = {
            scope: _build_section(
                f"{section}.scopes.{scope}", GrantSettings, grant, {"scope": scope}
            )
            for scope, grant in grants_table.items()
        }
        rest = {key: value for key, value in caller_table.items() if key != "scopes"}
        caller = _build_section(section, CallerSettings, rest, {"name": name, "scopes": grants})
        for field_name, names in (
            ("keys", [entry.split(":", 1)[0] for entry in caller.keys]),
            ("cert_sans", list(caller.cert_sans)),
        ):
            for identity in names:
                if owners.setdefault(identity, name) != name:
                    raise ConfigError(
                        f"{section}.{field_name}",
                        f"{identity!r} already names caller {owners[identity]!r}",
                    )
        callers[name] = caller
    return callers


def _check_callers_against(settings: Settings) -> None:
    """Rules between [callers], [scopes] and [tls], checked once every table is built."""
    wants_certs = any(caller.cert_sans for caller in settings.callers.values())
    if wants_certs and not settings.tls.client_ca_file:
        raise ConfigError("tls.client_ca_file", "is required when a caller has cert_sans")
    if settings.tls.client_ca_file and not wants_certs:
        raise ConfigError("tls.client_ca_file", "is set, but no [callers.NAME] has cert_sans")
    for caller in settings.callers.values():
        for scope, grant in caller.scopes.items():
            if scope not in settings.scopes:
                raise ConfigError(f"callers.{caller.name}.scopes.{scope}", "no such scope")
            if settings.scopes[scope].folder_quota_bytes and "write" in grant.permissions:
                raise ConfigError(
                    f"callers.{caller.name}.scopes.{scope}.permissions",
                    f"must not include write: scope {scope!r} has a folder quota, which STS "
                    "credentials cannot respect; grant PUT or POST in methods instead",
                )


def is_loopback(host: str) -> bool:
    """Whether a listen host is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def require_caller_authentication(settings: Settings) -> None:
    """Refuse to serve open to the network unless the configuration says so on purpose."""
    host, _ = parse_listen_address(settings.server.listen)
    if settings.callers or settings.auth.allow_unauthenticated or is_loopback(host):
        return
    raise ConfigError(
        "auth.allow_unauthenticated",
        f"{settings.server.listen} is not a loopback address and no [callers.NAME] are "
        "configured: anyone who reaches it could mint credentials. Configure callers "
        "(bearer keys or mTLS), or set [auth] allow_unauthenticated = true",
    )


def _access_key_from(environ: Mapping[str, str]) -> AccessKey | None:
    key_id = environ.get(ACCESS_KEY_ID_ENV, "")
    secret = environ.get(ACCESS_KEY_SECRET_ENV, "")
    token = environ.get(SECURITY_TOKEN_ENV, "")
    if not key_id and not secret:
        if token:
            raise ConfigError(SECURITY_TOKEN_ENV, f"is set without {ACCESS_KEY_ID_ENV}")
        return None
    for name, value, other in (
        (ACCESS_KEY_ID_ENV, key_id, ACCESS_KEY_SECRET_ENV),
        (ACCESS_KEY_SECRET_ENV, secret, ACCESS_KEY_ID_ENV),
    ):
        if not value:
            raise ConfigError(name, f"is empty or unset while {other} is set")
    return AccessKey(key_id, secret, token)


def _identity_env_from(environ: Mapping[str, str]) -> IdentityEnvironment:
    def flag(name: str) -> bool:
        return environ.get(name, "").strip().lower() == "true"

    return IdentityEnvironment(
        role_arn=environ.get(ROLE_ARN_ENV, ""),
        oidc_provider_arn=environ.get(OIDC_PROVIDER_ARN_ENV, ""),
        oidc_token_file=environ.get(OIDC_TOKEN_FILE_ENV, ""),
        role_session_name=environ.get(ROLE_SESSION_NAME_ENV, ""),
        ecs_role_name=environ.get(ECS_ROLE_NAME_ENV, ""),
        ecs_metadata_disabled=flag(ECS_METADATA_DISABLED_ENV),
        imdsv1_disabled=flag(IMDSV1_DISABLED_ENV),
        credentials_uri=environ.get(CREDENTIALS_URI_ENV, ""),
    )


def _cache_secrets_from(environ: Mapping[str, str], cache: CacheSettings) -> CacheSecrets | None:
    # Messages name the variable and the entry's position, never a key's text.
    text = environ.get(CACHE_KEYS_ENV, "")
    if not text:
        if cache.url:
            raise ConfigError(
                CACHE_KEYS_ENV, "must be set when [cache] url is: entries are encrypted in Redis"
            )
        return None
    keys: list[tuple[str, bytes]] = []
    for position, entry in enumerate(text.split(","), 1):
        key_id, sep, encoded = entry.strip().partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            key = b""
        if not sep or not _KEY_ID.fullmatch(key_id) or len(key) != 32:
            raise ConfigError(
                CACHE_KEYS_ENV,
                f"entry {position} must be ID:BASE64 with ID of 1-16 of A-Z a-z 0-9 _ - and "
                "BASE64 a 32-byte key (`openssl rand -base64 32`)",
            )
        if any(key_id == known for known, _ in keys):
            raise ConfigError(CACHE_KEYS_ENV, f"key id {key_id!r} appears twice")
        keys.append((key_id, key))
    return CacheSecrets(tuple(keys), environ.get(REDIS_PASSWORD_ENV, ""))


def _session_name_key_from(environ: Mapping[str, str]) -> bytes | None:
    text = environ.get(SESSION_NAME_KEY_ENV, "")
    if not text:
        return None
    if len(text) < SESSION_NAME_KEY_MIN_CHARS:
        raise ConfigError(
            SESSION_NAME_KEY_ENV,
            f"must be at least {SESSION_NAME_KEY_MIN_CHARS} characters (`openssl rand -base64 32`)",
        )
    return text.encode()


def settings_from_mapping(
    document: Mapping[str, object], environ: Mapping[str, str], source: str = "mapping"
) -> Settings:
    """Validate a parsed TOML document (and the environment) into Settings."""
    sections: dict[str, Any] = {}
    for name, table in document.items():
        if name == "scopes":
            sections[name] = _build_scopes(table)
            continue
        if name == "callers":
            sections[name] = _build_callers(table)
            continue
        cls = SECTIONS.get(name)
        if cls is None:
            known = ", ".join(sorted([*SECTIONS, "scopes", "callers"]))
            raise ConfigError(name, f"unknown section (known: {known})")
        sections[name] = _build_section(name, cls, table)
    settings = Settings(
        **sections,
        access_key=_access_key_from(environ),
        identity_env=_identity_env_from(environ),
        cache_secrets=_cache_secrets_from(environ, sections.get("cache", CacheSettings())),
        session_name_key=_session_name_key_from(environ),
        source=source,
    )
    _check_callers_against(settings)
    return settings


def load_settings(path: Path | None, environ: Mapping[str, str]) -> Settings:
    """Load from `path`, else from $SATCHEL_CONFIG, else the defaults."""
    if path is None and environ.get(CONFIG_PATH_ENV):
        path = Path(environ[CONFIG_PATH_ENV])
    if path is None:
        return settings_from_mapping({}, environ, source="defaults")
    return settings_from_mapping(read_document(path), environ, source=str(path))


def read_document(path: Path) -> dict[str, Any]:
    """The parsed TOML file, not yet validated."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--config", f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None


def require_complete(settings: Settings) -> None:
    """What `satchel serve` needs beyond a valid file (its identity is resolved at start)."""
    if not settings.scopes:
        raise ConfigError("scopes", "at least one [scopes.NAME] table is required to serve")
    require_caller_authentication(settings)
