"""Audit lines: one JSON object per decision, public fields only, to a stream or a file."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.scopes import make_scope

from satchel_server.access.admission import Admission
from satchel_server.access.audit import (
    AuditLog,
    CallRecord,
    UtcMillis,
    audit_log_from,
    close_call,
    current_call,
    open_call,
)
from satchel_server.access.callers import Authorizer, Caller
from satchel_server.api.status import abort_with
from satchel_server.config import AuditSettings, CallerSettings, GrantSettings
from satchel_server.errors import ConfigError, PermissionDenied, Unauthenticated
from satchel_server.rules.scopes import Permission, validate_token_request

NOW = datetime(2026, 11, 28, 12, 0, 0, 123000, tzinfo=UTC)
NOW_NS = int(NOW.timestamp()) * 1_000_000_000 + NOW.microsecond * 1000
SCOPES = {"saves": make_scope()}


def written(record: CallRecord, status: str) -> dict[str, object]:
    stream = io.StringIO()
    AuditLog(stream, clock=lambda: NOW_NS).write(record, status)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    document: dict[str, object] = json.loads(lines[0])
    return document


def test_an_allowed_issue_token_line_names_everything_public() -> None:
    record = CallRecord(rpc="IssueToken", request_id="req-1", peer="ipv4:127.0.0.1:5000")
    record.caller = Caller("eu", "key", "0123456789abcdef")
    record.asked(
        validate_token_request(
            SCOPES,
            scope_name="",
            player_id="p1",
            permissions=[Permission.WRITE, Permission.READ],
            ttl_seconds=None,
        )
    )
    record.handed_out(NOW, access_key_id="STS.abc", sts_request_id="STS-REQ-1", from_cache=False)
    assert written(record, "OK") == {
        "time": "2026-11-28T12:00:00.123Z",
        "request_id": "req-1",
        "rpc": "IssueToken",
        "peer": "ipv4:127.0.0.1:5000",
        "caller": "eu",
        "auth": "key",
        "credential": "0123456789abcdef",
        "scope": "saves",
        "player": "p1",
        "permissions": ["read", "write"],
        "method": None,
        "key": None,
        "outcome": "allowed",
        "status": "OK",
        "reason": None,
        "sts_request_id": "STS-REQ-1",
        "access_key_id": "STS.abc",
        "expiration": "2026-11-28T12:00:00.123Z",
        "from_cache": False,
    }


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("UNAUTHENTICATED", "denied"),
        ("PERMISSION_DENIED", "denied"),
        ("RESOURCE_EXHAUSTED", "denied"),
        ("INVALID_ARGUMENT", "denied"),
        ("UNAVAILABLE", "failed"),
        ("INTERNAL", "failed"),
        ("CANCELLED", "failed"),
    ],
)
def test_outcome_follows_the_status(status: str, outcome: str) -> None:
    assert written(CallRecord(rpc="IssueToken", request_id="r"), status)["outcome"] == outcome


def test_refusals_record_the_operator_reason() -> None:
    record = CallRecord(rpc="IssueToken", request_id="r")
    record.refused(Unauthenticated("unknown or retired key id (0123456789abcdef)"))
    assert written(record, "UNAUTHENTICATED")["reason"] == (
        "unknown or retired key id (0123456789abcdef)"
    )
    record.refused(PermissionDenied("caller 'eu' may not use scope 'x'"))
    assert written(record, "PERMISSION_DENIED")["reason"] == "caller 'eu' may not use scope 'x'"


def test_admission_notes_the_request_before_refusing_it() -> None:
    grant = GrantSettings(scope="saves", permissions=("read",))
    callers = {"eu": CallerSettings(name="eu", keys=(), scopes={"saves": grant})}
    record = CallRecord(rpc="IssueToken", request_id="r", caller=Caller("eu", "key", "k"))
    request = validate_token_request(
        SCOPES, scope_name="", player_id="p9", permissions=[Permission.LIST], ttl_seconds=None
    )
    with pytest.raises(PermissionDenied):
        Admission(Authorizer(callers)).admit(record, request)
    assert (record.scope, record.player, record.permissions) == ("saves", "p9", ("list",))


def test_current_call_is_the_opened_record_or_a_detached_one() -> None:
    assert current_call().rpc == ""
    record = CallRecord(rpc="PresignObject", request_id="r")
    token = open_call(record)
    try:
        assert current_call() is record
    finally:
        close_call(token)
    assert current_call() is not record


def test_audit_to_a_file_appends_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    for request_id in ("one", "two"):
        audit = audit_log_from(AuditSettings(output=str(path)))
        audit.write(CallRecord(rpc="IssueToken", request_id=request_id), "OK")
        audit.close()
    ids = [json.loads(line)["request_id"] for line in path.read_text().splitlines()]
    assert ids == ["one", "two"]


def test_an_unwritable_audit_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        audit_log_from(AuditSettings(output=str(tmp_path / "missing-dir" / "audit.jsonl")))
    assert caught.value.key == "audit.output"


@pytest.mark.asyncio
async def test_a_refusal_writes_its_audit_line_before_the_status_leaves() -> None:
    """grpc.aio's abort() sends the status before returning: the line must already exist."""
    events: list[str] = []

    class Context:
        def trailing_metadata(self) -> tuple[()]:
            return ()

        async def abort(self, code: object, details: str, metadata: object) -> None:
            events.append("status sent")
            raise RuntimeError("aborted")

    class Lines(io.StringIO):
        def write(self, text: str) -> int:
            events.append(f"audit {json.loads(text)['status']}")
            return len(text)

    record = CallRecord(rpc="IssueToken", request_id="r1", audit=AuditLog(Lines()))
    token = open_call(record)
    try:
        with pytest.raises(RuntimeError):
            await abort_with(Context(), Unauthenticated("no key"))  # type: ignore[arg-type]
    finally:
        close_call(token)
    assert events == ["audit UNAUTHENTICATED", "status sent"]


class _CountingStream(io.StringIO):
    """Counts the writes that reach the stream: one per system call for a real file."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.mark.asyncio
async def test_allowed_lines_are_written_together_in_order_after_the_flush_delay() -> None:
    stream = _CountingStream()
    audit = AuditLog(stream, clock=lambda: NOW_NS, flush_after=0.05)
    for request_id in ("a", "b"):
        audit.write(CallRecord(rpc="IssueToken", request_id=request_id), "OK")
    await asyncio.sleep(0)
    audit.write(CallRecord(rpc="IssueToken", request_id="c"), "OK")
    assert stream.getvalue() == ""  # gathered across loop turns, until the delay ends
    await asyncio.sleep(0.2)
    assert [json.loads(line)["request_id"] for line in stream.getvalue().splitlines()] == [
        "a",
        "b",
        "c",
    ]
    assert stream.writes == 1


@pytest.mark.asyncio
async def test_a_full_batch_is_written_without_waiting() -> None:
    stream = _CountingStream()
    audit = AuditLog(stream, clock=lambda: NOW_NS, flush_after=60, max_pending=3)
    for request_id in ("a", "b", "c", "d"):
        audit.write(CallRecord(rpc="IssueToken", request_id=request_id), "OK")
    assert [json.loads(line)["request_id"] for line in stream.getvalue().splitlines()] == [
        "a",
        "b",
        "c",
    ]
    assert stream.writes == 1
    audit.close()
    assert stream.getvalue().splitlines()[-1] == stream.getvalue().splitlines()[3]


@pytest.mark.asyncio
async def test_with_flush_ms_0_every_line_is_written_at_once(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = audit_log_from(AuditSettings(output=str(path), flush_ms=0))
    try:
        audit.write(CallRecord(rpc="IssueToken", request_id="a"), "OK")
        assert json.loads(path.read_text())["request_id"] == "a"
    finally:
        audit.close()


@pytest.mark.asyncio
async def test_any_other_status_writes_at_once_after_what_was_gathered() -> None:
    stream = _CountingStream()
    audit = AuditLog(stream, clock=lambda: NOW_NS, flush_after=0.01)
    audit.write(CallRecord(rpc="IssueToken", request_id="allowed"), "OK")
    audit.write(CallRecord(rpc="IssueToken", request_id="refused"), "PERMISSION_DENIED")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["request_id"], line["status"]) for line in lines] == [
        ("allowed", "OK"),
        ("refused", "PERMISSION_DENIED"),
    ]
    await asyncio.sleep(0.05)  # nothing is left for a later flush to write
    assert stream.getvalue().count("\n") == 2
    assert stream.writes == 1


@pytest.mark.asyncio
async def test_closing_writes_the_lines_still_gathered() -> None:
    stream = _CountingStream()
    audit = AuditLog(stream, clock=lambda: NOW_NS)
    audit.write(CallRecord(rpc="IssueToken", request_id="last"), "OK")
    audit.close()
    assert json.loads(stream.getvalue())["request_id"] == "last"


_TEXT = st.text(st.characters(codec="utf-8"), max_size=20)


@given(
    values=st.fixed_dictionaries(
        {
            "request_id": _TEXT,
            "peer": _TEXT,
            "scope": st.none() | _TEXT,
            "player": st.none() | _TEXT,
            "key": st.none() | _TEXT,
            "reason": st.none() | _TEXT,
            "permissions": st.none() | st.lists(_TEXT, max_size=4).map(tuple),
            "from_cache": st.none() | st.booleans(),
        }
    ),
    caller=st.none() | st.tuples(_TEXT, _TEXT, _TEXT),
    status=st.sampled_from(["OK", "PERMISSION_DENIED", "UNAVAILABLE"]),
)
def test_a_line_is_exactly_what_json_dumps_writes(
    values: dict[str, Any], caller: tuple[str, str, str] | None, status: str
) -> None:
    """The line is joined by hand for speed; json.dumps of the same document is the referee."""
    record = CallRecord(rpc="PresignObject", **values)
    record.caller = Caller(*caller) if caller else None
    permissions = values["permissions"]
    expected = {
        "time": "2026-11-28T12:00:00.123Z",
        "request_id": values["request_id"],
        "rpc": "PresignObject",
        "peer": values["peer"],
        "caller": caller[0] if caller else None,
        "auth": caller[1] if caller else None,
        "credential": caller[2] if caller else None,
        "scope": values["scope"],
        "player": values["player"],
        "permissions": None if permissions is None else list(permissions),
        "method": None,
        "key": values["key"],
        "outcome": {"OK": "allowed", "PERMISSION_DENIED": "denied"}.get(status, "failed"),
        "status": status,
        "reason": values["reason"],
        "sts_request_id": None,
        "access_key_id": None,
        "expiration": None,
        "from_cache": values["from_cache"],
    }
    assert record.line("2026-11-28T12:00:00.123Z", status) == json.dumps(
        expected, separators=(",", ":")
    )


def test_audit_times_are_utc_milliseconds_truncated_never_rounded_into_the_next_second() -> None:
    format_time = UtcMillis()
    assert format_time(NOW_NS) == "2026-11-28T12:00:00.123Z"
    last_of_second = NOW_NS - 123_000_000 + 999_999_999
    assert format_time(last_of_second) == "2026-11-28T12:00:00.999Z"
    assert format_time(last_of_second + 1) == "2026-11-28T12:00:01.000Z"
    assert format_time(0) == "1970-01-01T00:00:00.000Z"
