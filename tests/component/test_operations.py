"""What operators rely on: /metrics over HTTP, counting real traffic, and health via its port."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from component.emulator_fixtures import emulator
from support.processes import REPO_ROOT
from support.stack import Stack, running_stack

from satchel.v1 import token_service_pb2 as pb
from satchel_server.config import MetricsSettings
from satchel_server.emulator.faults import FaultPlan
from satchel_server.emulator.runner import Emulator
from satchel_server.observability import logs
from satchel_server.wiring import dev_settings

__all__ = ["emulator"]


@pytest_asyncio.fixture
async def stack(emulator: Emulator) -> AsyncIterator[Stack]:
    settings = dev_settings("127.0.0.1:0", emulator)
    settings = dataclasses.replace(settings, metrics=MetricsSettings(listen="127.0.0.1:0"))
    async with running_stack(emulator, settings) as running:
        yield running


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def value(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{sample} not exposed")


@pytest.mark.asyncio
async def test_metrics_are_exposed_and_count_real_traffic(stack: Stack) -> None:
    port = stack.server.metrics_port
    assert port
    for _ in range(3):
        await stack.stub.IssueToken(pb.IssueTokenRequest(player_id="p1"), timeout=10)
    await stack.stub.PresignObject(
        pb.PresignObjectRequest(player_id="p1", key="k", method=pb.HTTP_METHOD_GET), timeout=10
    )
    text = scrape(port)
    assert value(text, 'satchel_rpc_requests_total{code="OK",method="IssueToken"}') == 3
    assert value(text, 'satchel_rpc_requests_total{code="OK",method="PresignObject"}') == 1
    assert value(text, "satchel_cache_hits_total") == 2
    assert value(text, "satchel_cache_misses_total") == 1
    assert value(text, 'satchel_sts_calls_total{outcome="ok"}') == 2  # the player and the signer
    assert 3000 < value(text, 'satchel_signer_remaining_seconds{scope="dev"}') <= 3600
    assert "p1" not in text


def test_health_command_uses_the_health_only_port(spawn, tmp_path: Path) -> None:
    config = tmp_path / "satchel.toml"
    config.write_text(
        '[server]\nlisten = "127.0.0.1:0"\nhealth_listen = "127.0.0.1:0"\n'
        '[sts]\nendpoint = "http://127.0.0.1:9"\n'
        "[scopes.s]\n"
        'bucket = "game-saves"\nregion = "cn-hangzhou"\n'
        'role_arn = "acs:ram::1234567890123456:role/satchel"\n'
        'endpoint = "https://oss-cn-hangzhou.aliyuncs.com"\n'
    )
    keys = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-test", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "x"}
    proc = spawn("-m", "satchel_server", "serve", "--config", str(config), env=keys)
    proc.wait_listening()
    # STS is unreachable, so the signer has no credentials: NOT_SERVING, not SERVING.
    address = proc.wait_for(r"health listening on (\S+:\d+)").group(1)
    checked = subprocess.run(
        [sys.executable, "-m", "satchel_server", "health", "--target", address],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO_ROOT,
        check=False,
    )
    assert checked.returncode == 1
    assert checked.stdout.strip() == f"{address}: NOT_SERVING"
    proc.terminate()
    assert proc.wait() == 0


@pytest.mark.asyncio
async def test_log_lines_written_during_a_call_carry_its_request_id(stack: Stack) -> None:
    stack.emulator.faults.set("sts", FaultPlan(status=503, count=1))  # makes the call log
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    logs.configure("INFO", json_lines=True, stream=stream)
    try:
        await stack.stub.IssueToken(
            pb.IssueTokenRequest(player_id="p-logged"),
            metadata=(("x-request-id", "req-from-game-server-42"),),
            timeout=10,
        )
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    retried = [e for e in entries if "AssumeRole attempt" in e["message"]]
    assert retried
    assert {e["request_id"] for e in retried} == {"req-from-game-server-42"}
