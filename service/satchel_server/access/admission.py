"""Admission: the one step every validated request passes before Satchel acts on it.

Record what was asked (for the audit line), check the caller's grants, then
spend the caller's and the player's rate-limit tokens. Every RPC calls this with
its validated request, so the rules live here once rather than per RPC.

A call of several items (PresignObjects) is admitted in steps: its player and
scope once (`admit_subject`), each item's grant (`allow_item`), and one request
against the rate limits for the whole call (`spend`).
"""

from __future__ import annotations

from satchel_server.access.audit import CallRecord
from satchel_server.access.callers import Authorizer
from satchel_server.access.ratelimit import RateLimiter
from satchel_server.config import Settings
from satchel_server.rules.scopes import PresignRequest, PresignSubject, TokenRequest


class Admission:
    def __init__(self, authorizer: Authorizer, limiter: RateLimiter | None = None) -> None:
        self._authorizer = authorizer
        self._limiter = limiter

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        return cls(Authorizer(settings.callers), RateLimiter(settings.limits, settings.callers))

    @classmethod
    def open(cls) -> Admission:
        """No callers, no limits: for servers built without configuration (tests, defaults)."""
        return cls(Authorizer({}))

    def admit(self, call: CallRecord, request: TokenRequest | PresignRequest) -> None:
        """Raise PermissionDenied or RateLimited unless the request may proceed."""
        call.asked(request)
        self._authorizer.check(call.caller, request)
        self.spend(call, request)

    def admit_subject(self, call: CallRecord, subject: PresignSubject) -> None:
        """Raise PermissionDenied unless the caller may act for this player in this scope."""
        call.asked_for(subject)
        self._authorizer.check_subject(call.caller, subject)

    def allow_item(self, call: CallRecord, request: PresignRequest) -> None:
        """Raise PermissionDenied unless the caller's grant covers this item's method."""
        self._authorizer.check(call.caller, request)

    def spend(
        self, call: CallRecord, request: TokenRequest | PresignRequest | PresignSubject
    ) -> None:
        """Count one request for the caller and the player; RateLimited if either is out."""
        if self._limiter is not None:
            caller = call.caller.name if call.caller is not None else None
            self._limiter.take(caller, request.scope.name, request.player_id)
