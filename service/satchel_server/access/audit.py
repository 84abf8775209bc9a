"""The audit trail: one JSON line per decision, and the record each call builds up.

The API layer opens a CallRecord when a call arrives (request id, peer, caller),
the servicer and admission fill in what was asked and what was handed out, and
the line is written once the call's status is known. A call that decides on
several items (PresignObjects) gets one line per item, each with the item's
own status and its index in "item". A record holds only public
values: names, ids, the AccessKeyId and expiry. Never a secret, security token,
signature or URL: none of those has a field here to land in.

Lines go to a stream of their own (not the logging tree), so they are never
mixed with operational logs or dropped by a log level.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from satchel_server.access.callers import Caller
from satchel_server.config import AuditSettings
from satchel_server.errors import ConfigError, DomainError, Unauthenticated
from satchel_server.rules.scopes import (
    PresignRequest,
    PresignSubject,
    TokenRequest,
    permission_names,
)

# Statuses that are a refusal by policy rather than a failure to serve.
REFUSAL_STATUSES = frozenset(
    {"UNAUTHENTICATED", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "INVALID_ARGUMENT"}
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# How many allowed calls' lines may wait to be written together.
MAX_PENDING_LINES = 512

NanoClock = Callable[[], int]
"""Nanoseconds since the epoch, as time.time_ns(); injected so tests can fix the time."""


def _utc_millis(moment: datetime) -> str:
    """`2026-11-28T12:00:00.123Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _outcome(status: str) -> str:
    if status == "OK":
        return "allowed"
    return "denied" if status in REFUSAL_STATUSES else "failed"


def _reason(error: DomainError) -> str:
    # For operators: why. Unauthenticated's reason never reaches the caller.
    return error.reason if isinstance(error, Unauthenticated) else str(error)


@dataclass(slots=True)
class ItemRecord:
    """One item of a call that decides item by item: what it asked and how it ended."""

    index: int
    method: str | None = None
    key: str | None = None
    status: str | None = None  # None: decided with the call (its status is the call's)
    reason: str | None = None
    expiration: datetime | None = None

    def asked(self, request: PresignRequest) -> None:
        self.method = request.method
        self.key = request.key

    def refused(self, error: DomainError, status: str) -> None:
        self.status = status
        self.reason = _reason(error)

    def handed_out(self, expiration: datetime) -> None:
        self.status = "OK"
        self.expiration = expiration


@dataclass(slots=True)
class CallRecord:
    """What is known about one call so far. Filled in as the call proceeds."""

    rpc: str
    request_id: str
    peer: str = ""
    caller: Caller | None = None
    scope: str | None = None
    player: str | None = None
    permissions: tuple[str, ...] | None = None
    method: str | None = None
    key: str | None = None
    reason: str | None = None
    sts_request_id: str | None = None
    access_key_id: str | None = None
    expiration: datetime | None = None
    from_cache: bool | None = None
    items: list[ItemRecord] = field(default_factory=list)

    def asked_for(self, subject: PresignSubject) -> None:
        """A call of several items: whose folder, in which scope."""
        self.scope = subject.scope.name
        self.player = subject.player_id

    def item(self) -> ItemRecord:
        """The record of the call's next item."""
        record = ItemRecord(len(self.items))
        self.items.append(record)
        return record

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
        self.expiration = expiration
        self.access_key_id = access_key_id
        self.sts_request_id = sts_request_id
        self.from_cache = from_cache

    def refused(self, error: DomainError) -> None:
        self.reason = _reason(error)

    def urgent(self, status: str) -> bool:
        """Whether any line is a refusal or failure (written at once, before the answer)."""
        return status != "OK" or any(item.status not in (None, "OK") for item in self.items)

    def lines(self, time: datetime, status: str) -> list[str]:
        """The record as JSON objects, one per line: one per item, or one for the call."""
        fields = self._fields(time, status)
        if not self.items:
            return [json.dumps(fields)]
        lines = []
        for item in self.items:
            # Decided on its own (its status and reason), or with the call (the call's).
            decided = item.status is not None
            item_status = status if item.status is None else item.status
            fields["item"] = item.index
            fields["method"] = item.method
            fields["key"] = item.key
            fields["outcome"] = _outcome(item_status)
            fields["status"] = item_status
            fields["reason"] = item.reason if decided else self.reason
            fields["expiration"] = None if item.expiration is None else _utc_millis(item.expiration)
            lines.append(json.dumps(fields))
        return lines

    def _fields(self, time: datetime, status: str) -> dict[str, Any]:
        caller = self.caller
        return {
            "time": _utc_millis(time),
            "request_id": self.request_id,
            "rpc": self.rpc,
            "peer": self.peer,
            "caller": None if caller is None else caller.name,
            "auth": None if caller is None else caller.via,
            "credential": None if caller is None else caller.credential,
            "scope": self.scope,
            "player": self.player,
            "permissions": None if self.permissions is None else list(self.permissions),
            "item": None,
            "method": self.method,
            "key": self.key,
            "outcome": _outcome(status),
            "status": status,
            "reason": self.reason,
            "sts_request_id": self.sts_request_id,
            "access_key_id": self.access_key_id,
            "expiration": None if self.expiration is None else _utc_millis(self.expiration),
            "from_cache": self.from_cache,
        }


Timer = Callable[[float, Callable[[], None]], object]
"""Runs a callback after a delay, as loop.call_later; injected so tests fire it themselves."""


def _loop_timer(delay: float, callback: Callable[[], None]) -> object:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no event loop to wait on: now
        callback()
        return None
    return loop.call_later(delay, callback)


class AuditLog:
    """Writes decision lines, one per call (or per item), to their own stream.

    Not through logging: a line must never be dropped by a log level or mixed
    with operational logs.

    A refusal's or failure's line is written and flushed at once, after any
    line still waiting, so it is on record before its status leaves. An allowed
    call's line waits up to `flush_after` seconds (or until `max_pending` wait)
    to be written with others: under load the write and flush system calls per
    line cost more than formatting it. With `flush_after` 0 (the default here;
    the configured one is [audit] flush_ms) every line is written at once.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        owned: bool = False,
        clock: NanoClock = time.time_ns,
        flush_after: float = 0.0,
        max_pending: int = MAX_PENDING_LINES,
        timer: Timer = _loop_timer,
    ) -> None:
        self._stream = stream
        self._owned = owned  # a file we opened is ours to close; stdout is not
        self._clock = clock
        self._flush_after = flush_after
        self._max_pending = max_pending
        self._timer = timer
        self._pending: list[str] = []
        self._flush_due = False

    def write(self, record: CallRecord, status: str) -> None:
        """The call's lines: one, or one per item of a call that decides item by item."""
        now = _EPOCH + timedelta(microseconds=self._clock() // 1000)
        self._pending.extend(record.lines(now, status))
        if (
            record.urgent(status)
            or not self._flush_after
            or len(self._pending) >= self._max_pending
        ):
            self.flush()
        elif not self._flush_due:
            self._flush_due = True
            self._timer(self._flush_after, self.flush)

    def flush(self) -> None:
        """Write every line still waiting, in the order the calls ended."""
        self._flush_due = False
        if self._pending:
            lines, self._pending = self._pending, []
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
