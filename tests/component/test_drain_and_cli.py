"""Subprocess tests: SIGTERM drains in-flight calls and exits 0; the CLI's commands."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from support.processes import REPO_ROOT

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc

SLOW_SERVER = str(REPO_ROOT / "tests" / "support" / "slow_server.py")


def satchel(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    # Whatever keys the developer's shell holds must not leak into the tests.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    return subprocess.run(
        [sys.executable, "-m", "satchel_server", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=environ,
        check=False,
    )


@pytest.mark.asyncio
async def test_sigterm_lets_in_flight_call_finish_refuses_new_ones_and_exits_0(spawn) -> None:
    proc = spawn(SLOW_SERVER, env={"SLOW_SECONDS": "2"})
    address = await asyncio.to_thread(proc.wait_listening)
    request = pb.IssueTokenRequest(player_id="p1", permissions=[pb.PERMISSION_READ])
    async with grpc.aio.insecure_channel(address) as channel:
        in_flight = asyncio.ensure_future(
            pb_grpc.TokenServiceStub(channel).IssueToken(request, timeout=20)
        )
        await asyncio.to_thread(proc.wait_for, "in flight: IssueToken")
        proc.terminate()
        await asyncio.to_thread(proc.wait_for, "draining")

        late = pb.IssueTokenRequest(player_id="late")
        async with grpc.aio.insecure_channel(address) as late_channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await pb_grpc.TokenServiceStub(late_channel).IssueToken(late, timeout=3)
            # Refused at connect (UNAVAILABLE) or, if the connection races the
            # shutdown, cancelled by the server; either way never executed (below).
            assert refused.value.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.CANCELLED,
            )

        reply = await in_flight
        assert list(reply.permissions) == [pb.PERMISSION_READ]
    assert await asyncio.to_thread(proc.wait) == 0
    assert not any("IssueToken for late" in line for line in proc.output)


SERVE_CONFIG = """
[server]
listen = "127.0.0.1:0"
grace_seconds = 1
[sts]
endpoint = "http://127.0.0.1:9"
[scopes.saves]
bucket = "game-saves"
region = "cn-hangzhou"
role_arn = "acs:ram::1234567890123456:role/satchel"
endpoint = "https://oss-cn-hangzhou.aliyuncs.com"
# STS is unreachable here; signing with the RAM key needs none, so health can be SERVING.
sign_with_access_key = true
"""
FAKE_KEY = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-test", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "x"}


def test_serve_from_config_answers_health_and_exits_0_on_sigterm(spawn, tmp_path: Path) -> None:
    config = tmp_path / "satchel.toml"
    config.write_text(SERVE_CONFIG)
    proc = spawn("-m", "satchel_server", "serve", "--config", str(config), env=FAKE_KEY)
    address = proc.wait_listening()

    checked = satchel("health", "--target", address)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"{address}: SERVING"

    proc.terminate()
    assert proc.wait() == 0


def test_health_fails_when_nothing_answers() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    checked = satchel("health", "--target", f"127.0.0.1:{port}", "--timeout", "1")
    assert checked.returncode == 1
    assert "UNAVAILABLE" in checked.stderr or "DEADLINE_EXCEEDED" in checked.stderr


def test_dev_runs_on_the_emulator_with_reflection_and_issues_tokens(spawn, tmp_path: Path) -> None:
    proc = spawn(
        "-m", "satchel_server", "dev", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path)
    )
    address = proc.wait_listening()
    assert address.startswith("127.0.0.1:")
    with grpc.insecure_channel(address) as channel:
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
        assert "satchel.v1.TokenService" in services
        reply = pb_grpc.TokenServiceStub(channel).IssueToken(
            pb.IssueTokenRequest(player_id="p1"), timeout=10
        )
        assert reply.credentials.access_key_id.startswith("STS.")
        assert list(reply.permissions) == [
            pb.PERMISSION_READ,
            pb.PERMISSION_WRITE,
            pb.PERMISSION_LIST,
        ]
    proc.terminate()
    assert proc.wait() == 0


def test_serve_without_any_identity_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "satchel.toml"
    # The chain's metadata step asks a closed loopback port, never the cloud's address.
    config.write_text(SERVE_CONFIG + '[identity]\nmetadata_endpoint = "http://127.0.0.1:9"\n')
    result = satchel("serve", "--config", str(config))
    assert result.returncode == 2
    assert "'identity.source': default: no source yielded credentials" in result.stderr
    for source in ("env:", "oidc:", "ecs_ram_role:", "credentials_uri:"):
        assert source in result.stderr


def test_bad_config_stops_the_start_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "satchel.toml"
    config.write_text('[server]\ngrace_seconds = "soon"\n')
    result = satchel("serve", "--config", str(config))
    assert result.returncode == 2
    assert "'server.grace_seconds'" in result.stderr
    assert "expected float, got str" in result.stderr


def test_version_matches_the_installed_package() -> None:
    result = satchel("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"satchel {version('satchel')}"


@pytest.mark.asyncio
async def test_drain_under_load_loses_no_accepted_call(spawn) -> None:
    proc = spawn(SLOW_SERVER, env={"SLOW_SECONDS": "1.5"})
    address = await asyncio.to_thread(proc.wait_listening)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.TokenServiceStub(channel)
        calls = [
            asyncio.ensure_future(
                stub.IssueToken(pb.IssueTokenRequest(player_id=f"p{i}"), timeout=20)
            )
            for i in range(40)
        ]
        for _ in range(40):  # every call has reached the servicer
            await asyncio.to_thread(proc.wait_for, "in flight: IssueToken")
        proc.terminate()
        replies = await asyncio.gather(*calls, return_exceptions=True)
    failures = [r for r in replies if isinstance(r, BaseException)]
    assert failures == []
    assert await asyncio.to_thread(proc.wait) == 0
