"""Who is asking, and whether they may: caller authentication and authorisation.

Authentication names a configured caller from a bearer key, a client
certificate's SAN, or both (then they must agree). Authorisation runs after
request validation, on the validated request: the caller's grant for the scope
must cover the permissions (IssueToken) or the method (PresignObject), and the
player id must match the grant's pattern when it has one.

No gRPC here: the API layer hands in the header values and the certificate's
SANs, so the rules are tested without a server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from satchel_server.access.bearer import KeyTable
from satchel_server.config import CallerSettings, GrantSettings
from satchel_server.errors import PermissionDenied, Unauthenticated
from satchel_server.rules.scopes import PresignRequest, PresignSubject, TokenRequest

_BEARER = "bearer"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: its configured name, and how it proved it (never a secret)."""

    name: str
    via: str  # "key" or "cert"
    credential: str  # the bearer key's public id, or the certificate SAN that matched


class Authenticator:
    def __init__(self, callers: Mapping[str, CallerSettings]) -> None:
        self._keys = KeyTable.from_config({c.name: c.keys for c in callers.values()})
        self._sans = {san: c.name for c in callers.values() for san in c.cert_sans}
        # With no callers configured Satchel runs open (loopback or explicitly allowed).
        self.required = bool(callers)
        # Reading a call's certificate costs tens of microseconds: only when one can matter.
        self.uses_certificates = bool(self._sans)

    def identify(self, authorization: Sequence[str], cert_sans: Sequence[str]) -> Caller | None:
        """The caller behind a call, None when running open; Unauthenticated otherwise.

        `authorization` holds every `authorization` header value sent; `cert_sans`
        the verified client certificate's URI and DNS SANs (empty without mTLS).
        """
        if not self.required:
            return None
        by_cert = self._by_cert(cert_sans)
        if not authorization:
            if by_cert is None:
                raise Unauthenticated(
                    "certificate names no caller" if cert_sans else "no bearer key or SAN"
                )
            return by_cert
        by_key = self._by_key(authorization)
        if by_cert is not None and by_cert.name != by_key.name:
            raise Unauthenticated(f"key names {by_key.name!r}, certificate {by_cert.name!r}")
        return by_key

    def _by_key(self, authorization: Sequence[str]) -> Caller:
        if len(authorization) != 1:
            raise Unauthenticated("several authorization headers")
        scheme, _, key = authorization[0].strip().partition(" ")
        if scheme.lower() != _BEARER:
            raise Unauthenticated("authorization is not a bearer key")
        name, key_id = self._keys.caller_of(key.strip())
        return Caller(name, "key", key_id)

    def _by_cert(self, cert_sans: Sequence[str]) -> Caller | None:
        matches = {(self._sans[san], san) for san in cert_sans if san in self._sans}
        if len({name for name, _ in matches}) > 1:
            raise Unauthenticated("certificate names several callers")
        if not matches:
            return None
        name, san = min(matches)
        return Caller(name, "cert", san)


@dataclass(frozen=True, slots=True)
class _Grant:
    permissions: frozenset[str]
    methods: frozenset[str]
    player_id: re.Pattern[str] | None

    @classmethod
    def of(cls, grant: GrantSettings) -> _Grant:
        pattern = re.compile(grant.player_id_pattern) if grant.player_id_pattern else None
        return cls(frozenset(grant.permissions), frozenset(grant.methods), pattern)


class Authorizer:
    def __init__(self, callers: Mapping[str, CallerSettings]) -> None:
        self._grants = {
            caller.name: {scope: _Grant.of(grant) for scope, grant in caller.scopes.items()}
            for caller in callers.values()
        }
        self._required = bool(callers)

    def check_subject(self, caller: Caller | None, subject: PresignSubject) -> None:
        """Raise PermissionDenied unless `caller` may act for this player in this scope."""
        if self._required:
            self._grant(caller, subject.scope.name, subject.player_id)

    def check(self, caller: Caller | None, request: TokenRequest | PresignRequest) -> None:
        """Raise PermissionDenied unless `caller`'s grants cover the validated request."""
        if not self._required:
            return
        scope = request.scope.name
        caller, grant = self._grant(caller, scope, request.player_id)
        if isinstance(request, TokenRequest):
            asked = {p.value for p in request.permissions}
            refused = sorted(asked - grant.permissions)
            if refused:
                raise PermissionDenied(
                    f"caller {caller.name!r} may not ask for {refused[0]!r} in scope {scope!r}"
                )
        elif request.method.value not in grant.methods:
            raise PermissionDenied(
                f"caller {caller.name!r} may not presign {request.method.value} in scope {scope!r}"
            )

    def _grant(self, caller: Caller | None, scope: str, player_id: str) -> tuple[Caller, _Grant]:
        """The caller's grant for `scope`, if it covers `player_id`; PermissionDenied if not."""
        if caller is None:  # fail closed if a call ever bypasses authentication
            raise Unauthenticated("no caller identity on the call")
        grant = self._grants.get(caller.name, {}).get(scope)
        if grant is None:
            raise PermissionDenied(f"caller {caller.name!r} may not use scope {scope!r}")
        if grant.player_id is not None and not grant.player_id.fullmatch(player_id):
            raise PermissionDenied(
                f"caller {caller.name!r} may not act for this player id in scope {scope!r}"
            )
        return caller, grant
