"""Retries against a server that fails on a script: gRPC's policy, then RetryInfo delays."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import grpc
import pytest
from support.scripted_server import Failure, ScriptedService, scripted_server

import satchel
from satchel import RetryPolicy, cli
from satchel_server.cli import main

UNAVAILABLE = Failure(grpc.StatusCode.UNAVAILABLE)
# Short delays: the tests check that the wait happened (a lower bound), never an upper bound.
DELAY = timedelta(milliseconds=50)
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.02)


async def issue(
    service: ScriptedService, retry: RetryPolicy = FAST, api_key: str | None = None
) -> satchel.Token:
    async with (
        scripted_server(service) as address,
        satchel.Client(address, retry=retry, timeout=5, api_key=api_key) as client,
    ):
        return await client.issue_token("p1")


@pytest.mark.asyncio
async def test_grpc_policy_retries_unavailable_until_it_works() -> None:
    service = ScriptedService([UNAVAILABLE, UNAVAILABLE])
    token = await issue(service)
    assert token.credentials.access_key_id == "STS.scripted"
    assert len(service.arrivals) == 3


@pytest.mark.asyncio
async def test_attempts_are_bounded_and_the_last_error_is_typed() -> None:
    service = ScriptedService([UNAVAILABLE] * 5)
    with pytest.raises(satchel.UnavailableError) as caught:
        await issue(service, RetryPolicy(max_attempts=2, initial_backoff=0.01))
    assert len(service.arrivals) == 2
    assert caught.value.message == "scripted failure"


@pytest.mark.asyncio
async def test_no_retries_means_one_attempt() -> None:
    service = ScriptedService([UNAVAILABLE])
    with pytest.raises(satchel.UnavailableError):
        await issue(service, satchel.NO_RETRIES)
    assert len(service.arrivals) == 1


@pytest.mark.asyncio
async def test_retry_info_delay_is_waited_after_grpcs_attempts() -> None:
    throttled = Failure(grpc.StatusCode.UNAVAILABLE, DELAY)
    service = ScriptedService([throttled] * 3)  # all of gRPC's three attempts fail
    await issue(service)
    assert len(service.arrivals) == 4
    gap = service.arrivals[3].at - service.arrivals[2].at
    assert gap >= DELAY.total_seconds()


@pytest.mark.asyncio
async def test_grpc_policy_waits_a_server_pushback() -> None:
    pushback = Failure(grpc.StatusCode.UNAVAILABLE, pushback_ms=50)
    service = ScriptedService([pushback])
    await issue(service)
    assert len(service.arrivals) == 2
    assert service.arrivals[1].at - service.arrivals[0].at >= 0.05
    refused = ScriptedService([Failure(grpc.StatusCode.UNAVAILABLE, pushback_ms=-1)])
    with pytest.raises(satchel.UnavailableError):
        await issue(refused)  # a negative pushback means: do not retry
    assert len(refused.arrivals) == 1


@pytest.mark.asyncio
async def test_resource_exhausted_with_retry_info_is_retried_once_after_the_delay() -> None:
    service = ScriptedService([Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, DELAY)])
    await issue(service)
    assert len(service.arrivals) == 2  # gRPC's policy does not retry this code; the client does
    assert service.arrivals[1].at - service.arrivals[0].at >= DELAY.total_seconds()


@pytest.mark.asyncio
async def test_server_delay_retries_are_bounded() -> None:
    service = ScriptedService([Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, DELAY)] * 5)
    with pytest.raises(satchel.ResourceExhaustedError) as caught:
        await issue(service)
    assert len(service.arrivals) == 2
    assert caught.value.retry_delay == DELAY


@pytest.mark.asyncio
async def test_a_delay_past_the_deadline_is_returned_to_the_caller_not_waited() -> None:
    service = ScriptedService([Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, timedelta(hours=1))])
    with pytest.raises(satchel.ResourceExhaustedError) as caught:
        await issue(service)
    assert len(service.arrivals) == 1
    assert caught.value.retry_delay == timedelta(hours=1)


@pytest.mark.asyncio
async def test_invalid_argument_is_never_retried() -> None:
    service = ScriptedService([Failure(grpc.StatusCode.INVALID_ARGUMENT, field="player_id")])
    with pytest.raises(satchel.InvalidArgumentError) as caught:
        await issue(service)
    assert len(service.arrivals) == 1
    assert [v.field for v in caught.value.field_violations] == ["player_id"]


@pytest.mark.asyncio
async def test_sync_client_retries_the_same_way() -> None:
    service = ScriptedService([UNAVAILABLE, Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, DELAY)])
    async with scripted_server(service) as address:

        def call() -> satchel.Presigned:
            with satchel.SyncClient(address, retry=FAST, timeout=5) as client:
                return client.presign("p1", "save.dat", satchel.Method.PUT)

        presigned = await asyncio.to_thread(call)
    assert presigned.method is satchel.Method.PUT
    assert len(service.arrivals) == 3


@pytest.mark.asyncio
async def test_bearer_key_is_sent_on_every_attempt_and_only_when_given() -> None:
    service = ScriptedService([UNAVAILABLE])
    await issue(service, api_key="sk_test_1")
    assert [a.metadata.get("authorization") for a in service.arrivals] == ["Bearer sk_test_1"] * 2
    anonymous = ScriptedService()
    await issue(anonymous)
    assert "authorization" not in anonymous.arrivals[0].metadata


@pytest.mark.asyncio
async def test_nothing_listening_is_unavailable() -> None:
    async with scripted_server(ScriptedService()) as address:
        pass  # the port is closed again
    async with satchel.Client(address, retry=FAST, timeout=2) as client:
        with pytest.raises(satchel.UnavailableError):
            await client.issue_token("p1")


@pytest.mark.asyncio
async def test_cli_sends_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(cli.API_KEY_ENV, "sk_from_env")
    service = ScriptedService()
    async with scripted_server(service) as address:
        argv = ["presign", "--player", "p1", "--key", "k", "--target", address]
        assert await asyncio.to_thread(main, argv) == 0
    assert service.arrivals[0].metadata["authorization"] == "Bearer sk_from_env"
    assert json.loads(capsys.readouterr().out)["method"] == "GET"
