"""Rate limits per caller and per player: RESOURCE_EXHAUSTED with RetryInfo, and audited.

The rates are tiny (one token per 1000 s), so no token comes back during a test: nothing here
depends on timing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import grpc
import pytest
from component.auth_fixtures import (
    DEFAULT_CALLERS,
    EU_GRANT,
    EU_KEY,
    US_KEY,
    audit_lines,
    auth_settings,
    bearer,
    caller,
)
from component.emulator_fixtures import emulator
from component.test_issue_token import retry_delay_of
from support.stack import running_stack

from satchel.v1 import token_service_pb2 as pb
from satchel_server.config import LimitSettings
from satchel_server.emulator.runner import Emulator

__all__ = ["emulator"]

SLOW = 0.001  # tokens per second


@pytest.mark.asyncio
async def test_a_caller_over_its_limit_is_refused_with_a_retry_hint(
    emulator: Emulator, tmp_path: Path
) -> None:
    eu = dataclasses.replace(DEFAULT_CALLERS[0], rate_per_second=SLOW, burst=2)
    us = caller("game-us", US_KEY, dataclasses.replace(EU_GRANT, player_id_pattern=""))
    settings = auth_settings(emulator, tmp_path / "audit.jsonl", callers=(eu, us))
    async with running_stack(emulator, settings) as stack:
        for player in ("eu-1", "eu-2"):
            await stack.stub.IssueToken(
                pb.IssueTokenRequest(player_id=player), metadata=bearer(EU_KEY), timeout=10
            )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stack.stub.IssueToken(
                pb.IssueTokenRequest(player_id="eu-3"), metadata=bearer(EU_KEY), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "this caller" in caught.value.details()
        assert (retry_delay_of(caught.value) or 0) >= 900
        # Another caller has its own bucket.
        await stack.stub.IssueToken(
            pb.IssueTokenRequest(player_id="eu-3"), metadata=bearer(US_KEY), timeout=10
        )
    *_, refused, other = audit_lines(tmp_path / "audit.jsonl")
    assert (refused["caller"], refused["status"], refused["outcome"]) == (
        "game-eu",
        "RESOURCE_EXHAUSTED",
        "denied",
    )
    assert refused["player"] == "eu-3"
    assert (other["caller"], other["status"]) == ("game-us", "OK")


@pytest.mark.asyncio
async def test_a_hot_player_is_limited_across_rpcs_while_others_are_served(
    emulator: Emulator, tmp_path: Path
) -> None:
    limits = LimitSettings(player_rate_per_second=SLOW, player_burst=2)
    settings = auth_settings(emulator, tmp_path / "audit.jsonl", limits=limits)
    async with running_stack(emulator, settings) as stack:
        await stack.stub.IssueToken(
            pb.IssueTokenRequest(player_id="eu-9"), metadata=bearer(EU_KEY), timeout=10
        )
        presign = pb.PresignObjectRequest(player_id="eu-9", key="a", method=pb.HTTP_METHOD_GET)
        await stack.stub.PresignObject(presign, metadata=bearer(EU_KEY), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stack.stub.PresignObject(presign, metadata=bearer(EU_KEY), timeout=10)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "this player" in caught.value.details()
        assert (retry_delay_of(caught.value) or 0) >= 900
        await stack.stub.IssueToken(
            pb.IssueTokenRequest(player_id="eu-10"), metadata=bearer(EU_KEY), timeout=10
        )
    statuses = [line["status"] for line in audit_lines(tmp_path / "audit.jsonl")]
    assert statuses == ["OK", "OK", "RESOURCE_EXHAUSTED", "OK"]


@pytest.mark.asyncio
async def test_denied_calls_spend_no_player_tokens(emulator: Emulator, tmp_path: Path) -> None:
    limits = LimitSettings(player_rate_per_second=SLOW, player_burst=1)
    settings = auth_settings(emulator, tmp_path / "audit.jsonl", limits=limits)
    async with running_stack(emulator, settings) as stack:
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stack.stub.IssueToken(
                    pb.IssueTokenRequest(player_id="eu-1", permissions=[pb.PERMISSION_DELETE]),
                    metadata=bearer(EU_KEY),
                    timeout=10,
                )
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        await stack.stub.IssueToken(
            pb.IssueTokenRequest(player_id="eu-1"), metadata=bearer(EU_KEY), timeout=10
        )
