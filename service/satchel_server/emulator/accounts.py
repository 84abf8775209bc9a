"""Accounts, RAM users, roles and buckets (from TOML or the built-in dev set), and STS sessions.

The dev constants are deliberately, obviously fake: they exist so `satchel dev` needs no set-up
and they only ever work against this emulator.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from satchel_server.emulator.oidc import OidcProvider, new_provider
from satchel_server.emulator.ram_policy import (
    Policy,
    PolicyGrammarError,
    Request,
    is_allowed,
    parse_policy,
)
from satchel_server.emulator.trust_policy import TrustPolicy, parse_trust_policy

DEV_ACCOUNT_ID = "1234567890123456"
DEV_USER = "satchel-dev"
DEV_ACCESS_KEY_ID = "LTAIdevSatchelEmulatorFake"
DEV_ACCESS_KEY_SECRET = "devSecretForTheLocalEmulatorOnly000"  # noqa: S105 (fake, dev only)
DEV_BUCKET = "satchel-dev"
DEV_REGION = "cn-hangzhou"
DEV_ROLE = "satchel-dev-role"
DEV_ROLE_ARN = f"acs:ram::{DEV_ACCOUNT_ID}:role/{DEV_ROLE}"
DEV_ROLE_POLICY = (
    '{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:*",'
    f'"Resource":["acs:oss:*:*:{DEV_BUCKET}","acs:oss:*:*:{DEV_BUCKET}/*"]}}]}}'
)

# Satchel's own identity when it runs without a long-lived key: the role a pod assumes through
# RRSA (the dev OIDC provider), an ECS instance holds, or a credentials URI hands out.
DEV_OIDC_PROVIDER = "satchel-dev-oidc"
DEV_OIDC_PROVIDER_ARN = f"acs:ram::{DEV_ACCOUNT_ID}:oidc-provider/{DEV_OIDC_PROVIDER}"
DEV_OIDC_ISSUER = "https://oidc.satchel-dev.invalid"
DEV_OIDC_AUDIENCE = "sts.aliyuncs.com"  # RRSA's audience
DEV_OIDC_SUBJECT = "system:serviceaccount:satchel:satchel"
DEV_IDENTITY_ROLE = "satchel-identity"
DEV_IDENTITY_ROLE_ARN = f"acs:ram::{DEV_ACCOUNT_ID}:role/{DEV_IDENTITY_ROLE}"
DEV_IDENTITY_TRUST = (
    '{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",'
    f'"Principal":{{"Federated":["{DEV_OIDC_PROVIDER_ARN}"]}},'
    f'"Condition":{{"StringEquals":{{"oidc:iss":"{DEV_OIDC_ISSUER}",'
    f'"oidc:aud":"{DEV_OIDC_AUDIENCE}","oidc:sub":"{DEV_OIDC_SUBJECT}"}}}}}},'
    '{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"Service":["ecs.aliyuncs.com"]}}]}'
)
DEV_IDENTITY_POLICY = (
    '{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",'
    f'"Resource":"acs:ram::{DEV_ACCOUNT_ID}:role/*"}}]}}'
)
# The scope role trusts the account: its RAM users and, with sts:AssumeRole, its roles.
DEV_ROLE_TRUST = (
    '{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",'
    f'"Principal":{{"RAM":["acs:ram::{DEV_ACCOUNT_ID}:root"]}}}}]}}'
)
ECS_SERVICE = "ecs.aliyuncs.com"
# What a browser or WebGL build needs to upload and download with presigned URLs.
DEV_CORS_RULE: dict[str, object] = {
    "allowed_origins": ["*"],
    "allowed_methods": ["GET", "PUT", "POST", "HEAD", "DELETE"],
    "allowed_headers": ["*"],
    "expose_headers": ["ETag", "x-oss-request-id"],
    "max_age_seconds": 600,
}

DEV_USER_ENTRY: dict[str, object] = {
    "name": DEV_USER,
    "access_key_id": DEV_ACCESS_KEY_ID,
    "access_key_secret": DEV_ACCESS_KEY_SECRET,
}

_ROLE_ARN = re.compile(r"acs:ram::(\d+):role/([A-Za-z0-9.@_-]{1,64})")
# Sessions this long past expiry are forgotten; until then they answer SecurityTokenExpired.
_SESSION_RETENTION_S = 86400.0


class AccountsConfigError(ValueError):
    """The accounts file is malformed."""


@dataclass(frozen=True)
class User:
    account_id: str
    name: str
    access_key_id: str
    access_key_secret: str = field(repr=False)


@dataclass(frozen=True)
class Role:
    account_id: str
    name: str
    role_id: str
    trusted_users: tuple[str, ...]
    policies: tuple[Policy, ...] = field(repr=False)
    max_session_duration: int = 3600
    external_id: str | None = field(default=None, repr=False)
    trust: TrustPolicy | None = field(default=None, repr=False)

    @property
    def arn(self) -> str:
        return f"acs:ram::{self.account_id}:role/{self.name.lower()}"

    def trusts(self, user: User) -> bool:
        if user.account_id != self.account_id:
            return False
        if "*" in self.trusted_users or user.name in self.trusted_users:
            return True
        return self._trusts_ram(f"acs:ram::{user.account_id}:user/{user.name}")

    def trusts_role_session(self, session: Session) -> bool:
        """Role chaining: the caller's role is trusted here and may call sts:AssumeRole on it."""
        caller = session.role
        if caller.account_id != self.account_id:
            return False
        if not self._trusts_ram(f"acs:ram::{caller.account_id}:role/{caller.name.lower()}"):
            return False
        asked = Request("sts:AssumeRole", self.arn)
        return is_allowed(caller.policies, session.session_policy, asked)

    def trusts_service(self, service: str) -> bool:
        return self.trust is not None and self.trust.trusts("Service", service)

    def trusts_oidc(self, provider_arn: str, context: Mapping[str, str]) -> bool:
        return self.trust is not None and self.trust.trusts("Federated", provider_arn, context)

    def _trusts_ram(self, principal: str) -> bool:
        if self.trust is None:
            return False
        root = f"acs:ram::{self.account_id}:root"
        return self.trust.trusts("RAM", principal) or self.trust.trusts("RAM", root)


@dataclass(frozen=True)
class CorsRule:
    """One rule of a bucket's CORS configuration, as GetBucketCors answers it."""

    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_seconds: int | None = None


@dataclass(frozen=True)
class Bucket:
    account_id: str
    name: str
    region: str
    # Empty: the bucket has no CORS configuration (GetBucketCors answers 404).
    cors: tuple[CorsRule, ...] = ()


@dataclass(frozen=True)
class Session:
    """An issued STS credential. Secrets stay out of repr."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expiration: float
    role: Role = field(repr=False)
    session_name: str
    session_policy: Policy | None = field(default=None, repr=False)

    @property
    def assumed_role_id(self) -> str:
        return f"{self.role.role_id}:{self.session_name}"

    @property
    def arn(self) -> str:
        # AssumeRole answers `acs:ram::<account>:role/<role>/<session>` (not "assumed-role").
        return f"{self.role.arn}/{self.session_name}"


def parse_role_arn(arn: str) -> tuple[str, str] | None:
    """(account id, lower-cased role name), or None if the ARN is malformed."""
    match = _ROLE_ARN.fullmatch(arn)
    return (match.group(1), match.group(2).lower()) if match else None


class Directory:
    """Lookups over the configured entities plus the sessions issued so far."""

    def __init__(
        self,
        users: list[User],
        roles: list[Role],
        buckets: list[Bucket],
        oidc_providers: list[OidcProvider] | None = None,
    ) -> None:
        self._users = {user.access_key_id: user for user in users}
        self._oidc = {provider.arn: provider for provider in oidc_providers or []}
        self._roles = {(role.account_id, role.name.lower()): role for role in roles}
        self._buckets = {bucket.name: bucket for bucket in buckets}
        self._sessions: dict[str, Session] = {}
        self._next_sweep = 0.0
        self._lock = threading.Lock()

    @property
    def buckets(self) -> Mapping[str, Bucket]:
        return self._buckets

    def user_by_key(self, access_key_id: str) -> User | None:
        return self._users.get(access_key_id)

    def role(self, account_id: str, name: str) -> Role | None:
        return self._roles.get((account_id, name.lower()))

    def bucket(self, name: str) -> Bucket | None:
        return self._buckets.get(name)

    def oidc_provider(self, arn: str) -> OidcProvider | None:
        return self._oidc.get(arn)

    def session_by_key(self, access_key_id: str) -> Session | None:
        return self._sessions.get(access_key_id)

    def issue_session(
        self,
        role: Role,
        session_name: str,
        session_policy: Policy | None,
        expiration: float,
        now: float,
    ) -> Session:
        session = Session(
            access_key_id="STS." + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y"),
            access_key_secret=secrets.token_urlsafe(33),
            # Real tokens are long base64 blobs with `+`, `/` and `=`: so are ours, so clients
            # that mishandle escaping fail here as they would in the cloud.
            security_token="CAIS" + base64.b64encode(secrets.token_bytes(400)).decode(),
            expiration=expiration,
            role=role,
            session_name=session_name,
            session_policy=session_policy,
        )
        with self._lock:
            # Sweep at most once a minute, so issuing stays O(1) however many sessions exist.
            if now >= self._next_sweep:
                self._next_sweep = now + 60.0
                stale = [
                    k
                    for k, s in self._sessions.items()
                    if s.expiration + _SESSION_RETENTION_S < now
                ]
                for key in stale:
                    del self._sessions[key]
            self._sessions[session.access_key_id] = session
        return session


def _role_id(account_id: str, name: str) -> str:
    """A stable numeric id, like RAM's, derived from the role's identity."""
    digest = hashlib.sha256(f"{account_id}/{name.lower()}".encode()).hexdigest()
    return "3" + str(int(digest[:15], 16)).zfill(17)[:17]


def _policies(raw: object, where: str) -> tuple[Policy, ...]:
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise AccountsConfigError(f"{where}.policies must be a list of JSON strings")
    try:
        return tuple(parse_policy(text) for text in raw)
    except PolicyGrammarError as exc:
        raise AccountsConfigError(f"{where}.policies: {exc}") from exc


def _str(raw: Mapping[str, object], name: str, where: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise AccountsConfigError(f"{where}.{name} must be a non-empty string")
    return value


def _table_list(raw: Mapping[str, object], name: str, where: str) -> list[Mapping[str, object]]:
    value = raw.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise AccountsConfigError(f"{where}.{name} must be an array of tables")
    return value


def _names(raw: Mapping[str, object], name: str, where: str) -> tuple[str, ...]:
    value = raw.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AccountsConfigError(f"{where}.{name} must be a list of strings")
    return tuple(value)


def _cors_rules(raw: Mapping[str, object], where: str) -> tuple[CorsRule, ...]:
    rules: list[CorsRule] = []
    for rule in _table_list(raw, "cors", where):
        max_age = rule.get("max_age_seconds")
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int)):
            raise AccountsConfigError(f"{where}.cors.max_age_seconds must be an integer")
        origins = _names(rule, "allowed_origins", f"{where}.cors")
        methods = _names(rule, "allowed_methods", f"{where}.cors")
        if not origins or not methods:
            raise AccountsConfigError(f"{where}.cors needs allowed_origins and allowed_methods")
        rules.append(
            CorsRule(
                origins,
                methods,
                _names(rule, "allowed_headers", f"{where}.cors"),
                _names(rule, "expose_headers", f"{where}.cors"),
                max_age,
            )
        )
    return tuple(rules)


def directory_from_mapping(document: Mapping[str, object]) -> Directory:
    users: list[User] = []
    roles: list[Role] = []
    buckets: list[Bucket] = []
    providers: list[OidcProvider] = []
    for a, account in enumerate(_table_list(document, "accounts", "")):
        where = f"accounts[{a}]"
        account_id = _str(account, "id", where)
        if not account_id.isdigit():
            raise AccountsConfigError(f"{where}.id must be digits")
        for u in _table_list(account, "users", where):
            users.append(
                User(
                    account_id,
                    _str(u, "name", f"{where}.users"),
                    _str(u, "access_key_id", f"{where}.users"),
                    _str(u, "access_key_secret", f"{where}.users"),
                )
            )
        for r in _table_list(account, "roles", where):
            trusted = r.get("trusted_users", [])
            max_s = r.get("max_session_duration", 3600)
            external_id = r.get("external_id")
            if not isinstance(trusted, list) or not isinstance(max_s, int):
                raise AccountsConfigError(f"{where}.roles: bad trusted_users/max_session_duration")
            if external_id is not None and not isinstance(external_id, str):
                raise AccountsConfigError(f"{where}.roles.external_id must be a string")
            name = _str(r, "name", f"{where}.roles")
            trust = r.get("trust_policy")
            if trust is not None and not isinstance(trust, str):
                raise AccountsConfigError(f"{where}.roles.trust_policy must be a JSON string")
            try:
                trust_policy = parse_trust_policy(trust) if trust is not None else None
            except PolicyGrammarError as exc:
                raise AccountsConfigError(f"{where}.roles.trust_policy: {exc}") from exc
            roles.append(
                Role(
                    account_id=account_id,
                    name=name,
                    role_id=str(r.get("role_id", _role_id(account_id, name))),
                    trusted_users=tuple(str(t) for t in trusted),
                    policies=_policies(r.get("policies", []), f"{where}.roles"),
                    max_session_duration=max_s,
                    external_id=external_id,
                    trust=trust_policy,
                )
            )
        for b in _table_list(account, "buckets", where):
            buckets.append(
                Bucket(
                    account_id,
                    _str(b, "name", f"{where}.buckets"),
                    str(b.get("region", DEV_REGION)),
                    _cors_rules(b, f"{where}.buckets"),
                )
            )
        for o in _table_list(account, "oidc_providers", where):
            client_ids = o.get("client_ids", [])
            if not isinstance(client_ids, list) or not all(isinstance(c, str) for c in client_ids):
                raise AccountsConfigError(f"{where}.oidc_providers.client_ids must be strings")
            key_file = o.get("key_file")
            providers.append(
                new_provider(
                    account_id,
                    _str(o, "name", f"{where}.oidc_providers"),
                    _str(o, "issuer", f"{where}.oidc_providers"),
                    tuple(client_ids),
                    Path(str(key_file)).read_bytes() if key_file else None,
                )
            )
    return Directory(users, roles, buckets, providers)


def dev_document() -> dict[str, object]:
    """The built-in account, as the TOML file would describe it."""
    return {
        "accounts": [
            {
                "id": DEV_ACCOUNT_ID,
                "users": [DEV_USER_ENTRY],
                "roles": [
                    {
                        "name": DEV_ROLE,
                        "role_id": "300000000000000001",
                        "trusted_users": [DEV_USER],
                        "max_session_duration": 3600,
                        "policies": [DEV_ROLE_POLICY],
                        "trust_policy": DEV_ROLE_TRUST,
                    },
                    {
                        "name": DEV_IDENTITY_ROLE,
                        "role_id": "300000000000000002",
                        "max_session_duration": 3600,
                        "policies": [DEV_IDENTITY_POLICY],
                        "trust_policy": DEV_IDENTITY_TRUST,
                    },
                ],
                "oidc_providers": [
                    {
                        "name": DEV_OIDC_PROVIDER,
                        "issuer": DEV_OIDC_ISSUER,
                        "client_ids": [DEV_OIDC_AUDIENCE],
                    }
                ],
                "buckets": [{"name": DEV_BUCKET, "region": DEV_REGION, "cors": [DEV_CORS_RULE]}],
            }
        ]
    }


def load_directory(path: Path | None = None) -> Directory:
    """From a TOML file, or the built-in dev account when `path` is None."""
    if path is None:
        return directory_from_mapping(dev_document())
    with path.open("rb") as handle:
        try:
            document = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise AccountsConfigError(f"{path}: {exc}") from exc
    return directory_from_mapping(document)
