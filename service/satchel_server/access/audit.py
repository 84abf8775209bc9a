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

import asyncio
import contextvars
import functools
import json
import json.encoder
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from satchel_server.access.callers import Caller
from satchel_server.config import AuditSettings
from satchel_server.errors import ConfigError, SatchelError, Unauthenticated
from satchel_server.rules.scopes import PresignRequest, TokenRequest, permission_names

# Statuses that are a refusal by policy rather than a failure to serve.
_DENIED = frozenset(
    {"UNAUTHENTICATED", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "INVALID_ARGUMENT"}
)


# Credentials' expiries repeat across every call a cached credential serves.
@functools.lru_cache(maxsize=1024)
def _expiry_iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# How long an allowed call's line may wait to be written with others ([audit] flush_ms),
# and how many may wait.
FLUSH_AFTER_SECONDS = 0.02
MAX_PENDING_LINES = 512

NanoClock = Callable[[], int]
"""Nanoseconds since the epoch, as time.time_ns(); injected so tests can fix the time."""


class UtcMillis:
    """Epoch nanoseconds as `2026-11-28T12:00:00.123Z`, the date and time formatted once a second.

    Integer arithmetic, so a millisecond never rounds into the wrong second.
    """

    def __init__(self) -> None:
        self._second = -1
        self._formatted = ""

    def __call__(self, nanoseconds: int) -> str:
        second, millis = divmod(nanoseconds // 1_000_000, 1000)
        if second != self._second:
            self._formatted = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._formatted}.{millis:03d}Z"


@dataclass(slots=True)
class CallRecord:
    """What is known about one call so far. Filled in as the call proceeds."""

    rpc: str
    request_id: str
    peer: str = ""
    # Where settle() writes the call's line (set by the API layer); None: nowhere.
    # Fourth, so the API layer passes it by position: keywords cost a dataclass's
    # __init__ half as much again, once per call.
    audit: AuditLog | None = field(default=None, repr=False, compare=False)
    caller: Caller | None = None
    scope: str | None = None
    player: str | None = None
    permissions: tuple[str, ...] | None = None
    method: str | None = None
    key: str | None = None
    reason: str | None = None
    sts_request_id: str | None = None
    access_key_id: str | None = None
    expiration: str | None = None
    from_cache: bool | None = None
    settled: bool = field(default=False, repr=False, compare=False)

    def settle(self, status: str) -> None:
        """Write the call's one audit line with its final status; later calls do nothing.

        context.abort() sends the status before it returns control, so a refusal
        settles the record first: the line exists before the caller hears the answer.
        """
        if not self.settled and self.audit is not None:
            self.settled = True
            self.audit.write(self, status)

    def asked(self, request: TokenRequest | PresignRequest) -> None:
        self.scope = request.scope.name
        self.player = request.player_id
        if isinstance(request, TokenRequest):
            self.permissions = permission_names(request.permissions)
        else:
            self.method = request.method
            self.key = request.key

    def handed_out(
        self,
        expiration: datetime,
        access_key_id: str | None = None,
        sts_request_id: str | None = None,
        from_cache: bool | None = None,
    ) -> None:
        """What left the server: only the public parts of credentials, and when they end."""
        self.expiration = _expiry_iso(expiration)
        self.access_key_id = access_key_id
        self.sts_request_id = sts_request_id
        self.from_cache = from_cache

    def refused(self, error: SatchelError) -> None:
        # For operators: why. Unauthenticated's reason never reaches the caller.
        self.reason = error.reason if isinstance(error, Unauthenticated) else str(error)

    def line(self, time: str, status: str) -> str:
        """The record as one JSON object: what json.dumps gives, built without a dict.

        `time` is already formatted (UtcMillis). Every value is a string, a tuple of
        strings, a bool or null, so each is quoted by the json module's own (C)
        string encoder and joined in a fixed order: this runs once per call. The
        runs of fields that repeat from call to call (who called; what was asked;
        what was handed out) are formatted once and reused.
        """
        q = _quote
        caller = self.caller
        reason = self.reason
        return (
            f'{{"time":"{time}","request_id":{q(self.request_id)}'
            f',"rpc":{q(self.rpc)},"peer":{q(self.peer)}'
            + (
                ',"caller":null,"auth":null,"credential":null'
                if caller is None
                else _caller_fields(caller.name, caller.via, caller.credential)
            )
            + _asked_fields(self.scope, self.player, self.permissions, self.method, self.key)
            + f',"outcome":"{_OUTCOMES.get(status, "failed")}","status":{q(status)}'
            f',"reason":{"null" if reason is None else q(reason)}'
            + _granted_fields(
                self.sts_request_id, self.access_key_id, self.expiration, self.from_cache
            )
        )


# json.dumps(text, ensure_ascii=True) for one string: the C encoder json uses itself.
_quote = json.encoder.encode_basestring_ascii
_BOOLS = {True: "true", False: "false"}
_OUTCOMES = {"OK": "allowed"} | dict.fromkeys(_DENIED, "denied")
# Distinct runs of fields kept formatted; a player asking again reuses them.
_FIELD_RUNS_KEPT = 4096


def _json_list(values: tuple[str, ...]) -> str:
    return "[" + ",".join(map(_quote, values)) + "]"


def _json_text(value: str | None) -> str:
    return "null" if value is None else _quote(value)


@functools.lru_cache(maxsize=64)
def _caller_fields(name: str, via: str, credential: str) -> str:
    return f',"caller":{_quote(name)},"auth":{_quote(via)},"credential":{_quote(credential)}'


@functools.lru_cache(maxsize=_FIELD_RUNS_KEPT)
def _asked_fields(
    scope: str | None,
    player: str | None,
    permissions: tuple[str, ...] | None,
    method: str | None,
    key: str | None,
) -> str:
    return (
        f',"scope":{_json_text(scope)},"player":{_json_text(player)}'
        f',"permissions":{"null" if permissions is None else _json_list(permissions)}'
        f',"method":{_json_text(method)},"key":{_json_text(key)}'
    )


@functools.lru_cache(maxsize=_FIELD_RUNS_KEPT)
def _granted_fields(
    sts_request_id: str | None,
    access_key_id: str | None,
    expiration: str | None,
    from_cache: bool | None,
) -> str:
    return (
        f',"sts_request_id":{_json_text(sts_request_id)}'
        f',"access_key_id":{_json_text(access_key_id)}'
        f',"expiration":{_json_text(expiration)}'
        f',"from_cache":{"null" if from_cache is None else _BOOLS[from_cache]}}}'
    )


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
    """Writes decision lines, one per call, to their own stream.

    Not through logging: a LogRecord, a formatter and a handler lock per line cost
    more than building the line itself, on the event loop of every call.

    Allowed calls are gathered (the record, its status and the time) and their
    lines formatted and written together, with one write and one flush, at most
    `flush_after` seconds later or once `max_pending` are waiting. Under load a
    loop turn serves about one call, so batching per turn saved nothing: each
    line still cost a flush, a write system call and a loop turn of its own,
    which was a third of the audit's cost. A call with any other status is
    written at once, after everything gathered before it, so a refusal is on
    record before its status leaves. Outside an event loop every line is
    written at once.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        owned: bool = False,
        clock: NanoClock = time.time_ns,
        flush_after: float = FLUSH_AFTER_SECONDS,
        max_pending: int = MAX_PENDING_LINES,
    ) -> None:
        self._stream = stream
        self._owned = owned  # a file we opened is ours to close; stdout is not
        self._clock = clock
        self._flush_after = flush_after
        self._max_pending = max_pending
        self._format_time = UtcMillis()
        # (record, status, time in ns) of lines not yet written; records are final.
        self._pending: list[tuple[CallRecord, str, int]] = []
        self._scheduled: asyncio.TimerHandle | None = None

    def write(self, record: CallRecord, status: str) -> None:
        pending = self._pending
        pending.append((record, status, self._clock()))
        if status != "OK" or len(pending) >= self._max_pending or not self._flush_after:
            self.flush()
        elif self._scheduled is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._scheduled = loop.call_later(self._flush_after, self.flush)

    def flush(self) -> None:
        """Write every gathered line now."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if self._pending:
            pending, self._pending = self._pending, []
            format_time = self._format_time
            lines = [record.line(format_time(ns), status) for record, status, ns in pending]
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()

    def close(self) -> None:
        self.flush()
        if self._owned:
            self._stream.close()


def audit_log_from(settings: AuditSettings) -> AuditLog:
    """The configured destination: stdout, or a file appended to."""
    flush_after = settings.flush_ms / 1000
    if settings.output == "stdout":
        return AuditLog(sys.stdout, flush_after=flush_after)
    try:
        stream = Path(settings.output).open("a", encoding="utf-8")  # noqa: SIM115 - closed by close()
    except OSError as exc:
        raise ConfigError("audit.output", f"cannot open {settings.output}: {exc}") from None
    return AuditLog(stream, owned=True, flush_after=flush_after)
