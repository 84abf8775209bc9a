"""Audit lines: one JSON object per decision, public fields only, to a stream or a file."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.scopes import make_scope

from satchel_server.access.admission import Admission
from satchel_server.access.audit import AuditLog, CallRecord, audit_log_from
from satchel_server.access.callers import Authorizer, Caller
from satchel_server.api.pipeline import CallPipeline
from satchel_server.config import AuditSettings, CallerSettings, GrantSettings
from satchel_server.errors import ConfigError, PermissionDenied, RateLimited, Unauthenticated
from satchel_server.rules.scopes import (
    validate_presign_item,
    validate_presign_subject,
    validate_token_request,
)
from satchel_server.vocabulary import HttpMethod, PlayerPermission

NOW = datetime(2026, 11, 28, 12, 0, 0, 123000, tzinfo=UTC)
NOW_NS = int(NOW.timestamp()) * 1_000_000_000 + NOW.microsecond * 1000
SCOPES = {"saves": make_scope()}


def written(record: CallRecord, status: str, at_ns: int = NOW_NS) -> dict[str, object]:
    stream = io.StringIO()
    AuditLog(stream, clock=lambda: at_ns).write(record, status)
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
            permissions=[PlayerPermission.WRITE, PlayerPermission.READ],
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
        "item": None,
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
        SCOPES, scope_name="", player_id="p9", permissions=[PlayerPermission.LIST], ttl_seconds=None
    )
    with pytest.raises(PermissionDenied):
        Admission(Authorizer(callers)).admit(record, request)
    assert (record.scope, record.player, record.permissions) == ("saves", "p9", ("list",))


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
        def invocation_metadata(self) -> tuple[()]:
            return ()

        def peer(self) -> str:
            return "ipv4:127.0.0.1:5000"

        def set_trailing_metadata(self, metadata: object) -> None:
            pass

        def trailing_metadata(self) -> tuple[()]:
            return ()

        async def abort(self, code: object, details: str, metadata: object) -> None:
            events.append("status sent")
            raise RuntimeError("aborted")

    class Lines(io.StringIO):
        def write(self, text: str) -> int:
            events.append(f"audit {json.loads(text)['status']}")
            return len(text)

    pipeline = CallPipeline(audit=AuditLog(Lines()))
    with pytest.raises(RuntimeError):
        async with pipeline.call("IssueToken", Context()):  # type: ignore[arg-type]
            raise Unauthenticated("no key")
    assert events == ["audit UNAUTHENTICATED", "status sent"]


class _CountingStream(io.StringIO):
    """Counts writes and flushes: each is a system call for a real file."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.flushes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


class _Timers:
    """An injected timer: records what was asked, fires only when the test says."""

    def __init__(self) -> None:
        self.asked: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> None:
        self.asked.append((delay, callback))

    def fire(self) -> None:
        asked, self.asked = self.asked, []
        for _, callback in asked:
            callback()


def _ids(stream: io.StringIO) -> list[str]:
    return [json.loads(line)["request_id"] for line in stream.getvalue().splitlines()]


def test_allowed_lines_wait_for_the_timer_then_go_in_one_write() -> None:
    stream, timers = _CountingStream(), _Timers()
    audit = AuditLog(stream, clock=lambda: NOW_NS, flush_after=0.02, timer=timers)
    for request_id in ("a", "b", "c"):
        audit.write(CallRecord(rpc="IssueToken", request_id=request_id), "OK")
    assert stream.getvalue() == ""
    assert [delay for delay, _ in timers.asked] == [0.02]  # one timer for the batch
    timers.fire()
    assert _ids(stream) == ["a", "b", "c"]
    assert (stream.writes, stream.flushes) == (1, 1)


def test_a_refusal_is_written_at_once_after_the_lines_waiting() -> None:
    stream, timers = _CountingStream(), _Timers()
    audit = AuditLog(stream, clock=lambda: NOW_NS, flush_after=0.02, timer=timers)
    audit.write(CallRecord(rpc="IssueToken", request_id="allowed"), "OK")
    audit.write(CallRecord(rpc="IssueToken", request_id="refused"), "PERMISSION_DENIED")
    assert _ids(stream) == ["allowed", "refused"]
    timers.fire()  # the timer finds nothing left to write
    assert _ids(stream) == ["allowed", "refused"]
    assert stream.writes == 1


def test_a_full_batch_is_written_without_waiting_and_close_writes_the_rest() -> None:
    stream, timers = _CountingStream(), _Timers()
    audit = AuditLog(stream, clock=lambda: NOW_NS, flush_after=60, max_pending=3, timer=timers)
    for request_id in ("a", "b", "c", "d"):
        audit.write(CallRecord(rpc="IssueToken", request_id=request_id), "OK")
    assert _ids(stream) == ["a", "b", "c"]
    audit.close()
    assert _ids(stream) == ["a", "b", "c", "d"]


def test_with_flush_ms_0_every_line_is_written_at_once(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = audit_log_from(AuditSettings(output=str(path), flush_ms=0))
    try:
        audit.write(CallRecord(rpc="IssueToken", request_id="a"), "OK")
        assert json.loads(path.read_text())["request_id"] == "a"
    finally:
        audit.close()


def test_closing_leaves_a_stream_it_does_not_own_open() -> None:
    stream = io.StringIO()
    AuditLog(stream).close()
    assert not stream.closed


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
    """Any text in any field comes back from the line exactly; the fields keep their order."""
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
        "item": None,
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
    [line] = record.lines(NOW, status)
    assert "\n" not in line
    assert list(json.loads(line).items()) == list(expected.items())


def test_audit_times_are_utc_milliseconds_truncated_never_rounded_into_the_next_second() -> None:
    record = CallRecord(rpc="IssueToken", request_id="r")
    assert written(record, "OK")["time"] == "2026-11-28T12:00:00.123Z"
    last_of_second = NOW_NS - 123_000_000 + 999_999_999
    assert written(record, "OK", last_of_second)["time"] == "2026-11-28T12:00:00.999Z"
    assert written(record, "OK", last_of_second + 1)["time"] == "2026-11-28T12:00:01.000Z"
    assert written(record, "OK", 0)["time"] == "1970-01-01T00:00:00.000Z"


def _items_record() -> CallRecord:
    """A PresignObjects call: an item presigned, one refused, one decided with the call."""
    record = CallRecord(rpc="PresignObjects", request_id="batch", caller=Caller("eu", "key", "k"))
    subject = validate_presign_subject(SCOPES, scope_name="", player_id="p1")
    record.asked_for(subject)
    allowed = record.item()
    allowed.asked(
        validate_presign_item(
            subject,
            key="a.png",
            method=HttpMethod.GET,
            expires_seconds=None,
            content_type="",
            max_size=0,
            forbid_overwrite=False,
        )
    )
    allowed.handed_out(NOW)
    record.item().refused(
        PermissionDenied("caller 'eu' may not presign DELETE"), "PERMISSION_DENIED"
    )
    record.item()
    return record


def test_a_call_of_several_items_writes_one_line_per_item() -> None:
    stream = io.StringIO()
    AuditLog(stream, clock=lambda: NOW_NS).write(_items_record(), "OK")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [
        (line["item"], line["method"], line["key"], line["status"], line["outcome"])
        for line in lines
    ] == [
        (0, "GET", "players/p1/a.png", "OK", "allowed"),
        (1, None, None, "PERMISSION_DENIED", "denied"),
        (2, None, None, "OK", "allowed"),  # decided with the call: the call's status
    ]
    assert [line["expiration"] for line in lines] == ["2026-11-28T12:00:00.123Z", None, None]
    assert lines[1]["reason"] == "caller 'eu' may not presign DELETE"
    for line in lines:
        assert (line["request_id"], line["rpc"], line["caller"]) == (
            "batch",
            "PresignObjects",
            "eu",
        )
        assert (line["scope"], line["player"]) == ("saves", "p1")


def test_a_call_refused_as_a_whole_gives_each_item_its_status_and_reason() -> None:
    record = _items_record()
    record.refused(RateLimited("player", 3.0))
    stream = io.StringIO()
    AuditLog(stream, clock=lambda: NOW_NS).write(record, "RESOURCE_EXHAUSTED")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["status"], line["reason"]) for line in lines] == [
        ("OK", None),  # what the item had already been given is on record
        ("PERMISSION_DENIED", "caller 'eu' may not presign DELETE"),
        ("RESOURCE_EXHAUSTED", "rate limit exceeded for this player"),
    ]


def test_an_item_refused_in_an_allowed_call_is_written_at_once() -> None:
    stream, timers = _CountingStream(), _Timers()
    audit = AuditLog(stream, clock=lambda: NOW_NS, flush_after=0.02, timer=timers)
    audit.write(CallRecord(rpc="IssueToken", request_id="waiting"), "OK")
    audit.write(_items_record(), "OK")
    assert _ids(stream) == ["waiting", "batch", "batch", "batch"]
    assert stream.writes == 1
