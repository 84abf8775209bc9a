"""The call pipeline: what it records for outcomes that no raised error announces."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry, Histogram

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from satchel_server.access.audit import AuditLog
from satchel_server.access.callers import Authenticator
from satchel_server.api.pipeline import CallPipeline, ServicerContext
from satchel_server.api.servicer import TokenService
from satchel_server.observability.metrics import LATENCY_BUCKETS, new_metrics


class _SetsACodeAndReturns(TokenService):
    async def IssueToken(
        self, request: pb.IssueTokenRequest, context: ServicerContext
    ) -> pb.IssueTokenResponse:
        async with self._pipeline.call("IssueToken", context):
            context.set_code(grpc.StatusCode.NOT_FOUND)
            return pb.IssueTokenResponse()


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[pb_grpc.TokenServiceAsyncStub, io.StringIO, Any]]:
    metrics = new_metrics()
    lines = io.StringIO()
    audit = AuditLog(lines)
    pipeline = CallPipeline(Authenticator({}), audit, metrics.rpc)
    server = grpc.aio.server()
    pb_grpc.add_TokenServiceServicer_to_server(_SetsACodeAndReturns(pipeline=pipeline), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield pb_grpc.TokenServiceStub(channel), lines, metrics
    finally:
        await server.stop(None)
        audit.close()


@pytest.mark.asyncio
async def test_a_status_set_without_raising_is_the_one_audited_and_counted(served) -> None:
    stub, lines, metrics = served
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.IssueToken(pb.IssueTokenRequest(player_id="p1"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    (line,) = [json.loads(text) for text in lines.getvalue().splitlines()]
    assert (line["status"], line["outcome"]) == ("NOT_FOUND", "failed")
    labels = {"method": "IssueToken", "code": "NOT_FOUND"}
    assert metrics.registry.get_sample_value("satchel_rpc_requests_total", labels) == 1


def test_rpc_latency_buckets_match_what_prometheus_client_would_expose() -> None:
    """RpcStats keeps plain numbers; prometheus_client's own Histogram is the referee."""
    observed = [0.0, 0.0005, 0.0007, 0.001, 0.003, 0.05, 0.5, 2.5, 7.0, 11.0]
    reference = CollectorRegistry()
    histogram = Histogram(
        "satchel_rpc_latency_seconds", "", ["method"], buckets=LATENCY_BUCKETS, registry=reference
    )
    metrics = new_metrics()
    for seconds in observed:
        histogram.labels("IssueToken").observe(seconds)
        metrics.rpc.finished("IssueToken", "OK", seconds)

    def samples(
        registry: CollectorRegistry,
    ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in registry.collect()
            if family.name == "satchel_rpc_latency_seconds"
            for sample in family.samples
            if not sample.name.endswith("_created")
        }

    assert samples(metrics.registry) == samples(reference)
