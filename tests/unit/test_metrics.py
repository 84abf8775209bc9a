"""Metrics: RPCs by method and code, STS outcomes, and state read at scrape time."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest
import pytest_asyncio
from prometheus_client import generate_latest
from support.fakes import FakeClock, ScriptedSts
from support.scopes import make_scope

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from satchel_server.access.audit import AuditLog
from satchel_server.access.callers import Authenticator
from satchel_server.api.pipeline import CallPipeline
from satchel_server.api.servicer import TokenService
from satchel_server.config import AccessKey, CacheSettings
from satchel_server.credentials.broker import CredentialBroker, NoSharedCache
from satchel_server.credentials.budget import TokenBucket
from satchel_server.observability.metrics import (
    Metrics,
    StateCollector,
    new_metrics,
    sts_outcome_label,
)
from satchel_server.presigning.signing_credentials import ScopeRefresher
from satchel_server.rules.scopes import TokenRequest
from satchel_server.vocabulary import PlayerPermission


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels or None)


@pytest_asyncio.fixture
async def observed() -> AsyncIterator[tuple[Metrics, pb_grpc.TokenServiceAsyncStub]]:
    metrics = new_metrics()
    pipeline = CallPipeline(Authenticator({}), AuditLog(io.StringIO()), metrics.rpc)
    server = grpc.aio.server()
    pb_grpc.add_TokenServiceServicer_to_server(TokenService(pipeline=pipeline), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield metrics, pb_grpc.TokenServiceStub(channel)
    finally:
        await server.stop(None)


@pytest.mark.asyncio
async def test_rpcs_are_counted_by_method_and_status_code(observed) -> None:
    metrics, stub = observed
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.IssueToken(pb.IssueTokenRequest(player_id="secret-player"), timeout=5)
    count = sample(
        metrics, "satchel_rpc_requests_total", method="IssueToken", code="FAILED_PRECONDITION"
    )
    assert count == 3
    assert sample(metrics, "satchel_rpc_latency_seconds_count", method="IssueToken") == 3
    assert sample(metrics, "satchel_rpc_in_flight") == 0
    assert b"secret-player" not in generate_latest(metrics.registry)


@pytest.mark.parametrize(
    ("outcome", "label"),
    [
        ("ok", "ok"),
        ("Throttling.User", "Throttling"),
        ("InvalidParameter.PolicyGrammar", "InvalidParameter"),
        ("timeout", "timeout"),
        ("<html>attacker-chosen", "other"),
        ("", "other"),
    ],
)
def test_sts_outcomes_have_bounded_labels(outcome: str, label: str) -> None:
    assert sts_outcome_label(outcome) == label
    metrics = new_metrics()
    metrics.observe_sts(outcome, 0.02)
    assert sample(metrics, "satchel_sts_calls_total", outcome=label) == 1


@pytest.mark.asyncio
async def test_state_collector_reads_cache_budget_and_signers_at_scrape_time() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock, delay=0)
    budget = TokenBucket(50, burst=50)
    broker = CredentialBroker(sts, CacheSettings(), budget, clock)
    scope = make_scope()
    signer = ScopeRefresher(scope, sts, budget, AccessKey("LTAI-id", "secret"), clock)
    await signer.refresh()
    request = TokenRequest(scope, "p1", "players/p1/", frozenset({PlayerPermission.READ}), 3600)
    await broker.credentials_for(request, deadline=None)
    await broker.credentials_for(request, deadline=None)
    metrics = new_metrics()
    metrics.registry.register(StateCollector(broker, budget, {"saves": signer}, clock))
    clock.now += timedelta(seconds=100)
    assert sample(metrics, "satchel_cache_hits_total") == 1
    assert sample(metrics, "satchel_cache_misses_total") == 1
    assert sample(metrics, "satchel_cache_entries") == 1
    assert sample(metrics, "satchel_signer_remaining_seconds", scope="saves") == 3500
    tokens = sample(metrics, "satchel_sts_budget_tokens")
    assert tokens is not None
    assert 47 <= tokens <= 50


class _SharedDown(NoSharedCache):
    up: bool | None = False


@pytest.mark.asyncio
async def test_shared_cache_gauge_says_whether_redis_answers() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock, delay=0)
    budget = TokenBucket(50)
    alone = new_metrics()
    alone.registry.register(
        StateCollector(CredentialBroker(sts, CacheSettings(), budget, clock), budget, {}, clock)
    )
    assert sample(alone, "satchel_shared_cache_up") is None  # no shared cache configured
    fleet = new_metrics()
    broker = CredentialBroker(sts, CacheSettings(), budget, clock, shared=_SharedDown())
    fleet.registry.register(StateCollector(broker, budget, {}, clock))
    assert sample(fleet, "satchel_shared_cache_up") == 0
