"""The audit trail: one JSON line per decision, and the record each call builds up.

The API layer opens a CallRecord when a call arrives (request id, peer, caller),
the servicer and admission fill in what was asked and what was handed out, and
the line is written once the call's status is known. A record holds only public
values: names, ids, the AccessKeyId and expiry. Never a secret, security token,
signature or URL: none of those has a field here to land in.

Lines go to a stream of their own (not the logging tree), so they are never
mixed with operational logs or dropped by a log level.
"""

from __future__ import annotations

import contextvars
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from service.callers import Caller
from service.config import AuditSettings
from service.credentials import Clock, utc_now
from service.errors import ConfigError, SatchelError, Unauthenticated
from service.scopes import PresignRequest, TokenRequest

# Statuses that are a refusal by policy rather than a failure to serve.
_DENIED = frozenset(
    {"UNAUTHENTICATED", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "INVALID_ARGUMENT"}
)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class CallRecord:
    """What is known about one call so far. Filled in as the call proceeds."""

    rpc: str
    request_id: str
    peer: str = ""
    caller: Caller | None = None
    scope: str | None = None
    player: str | None = None
    permissions: list[str] | None = None
    method: str | None = None
    key: str | None = None
    reason: str | None = None
    sts_request_id: str | None = None
    access_key_id: str | None = None
    expiration: str | None = None
    from_cache: bool | None = None
    # Writes the call's one audit line with its final status (set by the API layer).
    # context.abort() sends the status before it returns control, so a refusal
    # settles the record first: the line exists before the caller hears the answer.
    settle: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def asked(self, request: TokenRequest | PresignRequest) -> None:
        self.scope = request.scope.name
        self.player = request.player_id
        if isinstance(request, TokenRequest):
            self.permissions = sorted(p.value for p in request.permissions)
        else:
            self.method = request.method.value
            self.key = request.key

    def handed_out(
        self,
        expiration: datetime,
        access_key_id: str | None = None,
        sts_request_id: str | None = None,
        from_cache: bool | None = None,
    ) -> None:
        """What left the server: only the public parts of credentials, and when they end."""
        self.expiration = _iso(expiration)
        self.access_key_id = access_key_id
        self.sts_request_id = sts_request_id
        self.from_cache = from_cache

    def refused(self, error: SatchelError) -> None:
        # For operators: why. Unauthenticated's reason never reaches the caller.
        self.reason = error.reason if isinstance(error, Unauthenticated) else str(error)

    def line(self, time: datetime, status: str) -> str:
        caller = self.caller
        document = {
            "time": _iso(time),
            "request_id": self.request_id,
            "rpc": self.rpc,
            "peer": self.peer,
            "caller": caller.name if caller else None,
            "auth": caller.via if caller else None,
            "credential": caller.credential if caller else None,
            "scope": self.scope,
            "player": self.player,
            "permissions": self.permissions,
            "method": self.method,
            "key": self.key,
            "outcome": "allowed" if status == "OK" else "denied" if status in _DENIED else "failed",
            "status": status,
            "reason": self.reason,
            "sts_request_id": self.sts_request_id,
            "access_key_id": self.access_key_id,
            "expiration": self.expiration,
            "from_cache": self.from_cache,
        }
        return json.dumps(document, separators=(",", ":"), ensure_ascii=True)


_CURRENT: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "satchel_call", default=None
)


def current_call() -> CallRecord:
    """The record of the call being served; a detached one when none was opened."""
    record = _CURRENT.get()
    return record if record is not None else CallRecord(rpc="", request_id="")


def open_call(record: CallRecord) -> contextvars.Token[CallRecord | None]:
    return _CURRENT.set(record)


def close_call(token: contextvars.Token[CallRecord | None]) -> None:
    _CURRENT.reset(token)


class AuditLog:
    """Writes decision lines, one per call, straight to their own stream.

    Not through logging: a LogRecord, a formatter and a handler lock per line cost
    more than building the line itself, on the event loop of every call. Each line
    is flushed as it is written, so it is on disk (or in the pipe) when the call's
    answer leaves, and a crash loses nothing already answered.
    """

    def __init__(self, stream: TextIO, *, owned: bool = False, clock: Clock = utc_now) -> None:
        self._stream = stream
        self._owned = owned  # a file we opened is ours to close; stdout is not
        self._clock = clock

    def write(self, record: CallRecord, status: str) -> None:
        self._stream.write(record.line(self._clock(), status) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._owned:
            self._stream.close()
        else:
            self._stream.flush()


def audit_log_from(settings: AuditSettings) -> AuditLog:
    """The configured destination: stdout, or a file appended to."""
    if settings.output == "stdout":
        return AuditLog(sys.stdout)
    try:
        stream = Path(settings.output).open("a", encoding="utf-8")  # noqa: SIM115 - closed by close()
    except OSError as exc:
        raise ConfigError("audit.output", f"cannot open {settings.output}: {exc}") from None
    return AuditLog(stream, owned=True)
