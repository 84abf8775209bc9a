"""The doctor's AssumeRole calls carry a RoleSessionName no player id can map to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from support.scopes import make_scope

from satchel_server.config import settings_from_mapping
from satchel_server.credentials.broker import AssumeRoleRequest, AssumeRoleResult
from satchel_server.credentials.types import TemporaryCredentials
from satchel_server.doctor.checks import _Context
from satchel_server.rules.scopes import DOCTOR_SESSION_NAME, role_session_name


class RecordingSts:
    def __init__(self) -> None:
        self.requests: list[AssumeRoleRequest] = []

    async def assume_role(
        self, request: AssumeRoleRequest, *, deadline: float | None
    ) -> AssumeRoleResult:
        self.requests.append(request)
        expiration = datetime(2030, 1, 1, tzinfo=UTC)
        return AssumeRoleResult(TemporaryCredentials("STS.x", "s", "t", expiration), "req")


@pytest.mark.asyncio
async def test_the_doctors_probe_session_is_not_a_players() -> None:
    sts = RecordingSts()
    context = _Context(
        settings_from_mapping({}, {}),
        None,
        cast(Any, None),
        cast(Any, sts),
        lambda: datetime.now(UTC),
    )
    await context.assume(make_scope(), "", 900)
    (request,) = sts.requests
    assert request.role_session_name == DOCTOR_SESSION_NAME
    # A player called "doctor" keeps ActionTrail's "satchel-doctor" to itself.
    assert role_session_name("doctor", b"k" * 32) != request.role_session_name
