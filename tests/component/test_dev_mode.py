"""`satchel dev --config FILE` runs your configuration on the emulator; `satchel dev` serves
metrics on loopback and says where; `satchel emulator` prints how to point `satchel serve`
at it, and those instructions work."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import tomllib
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from support.processes import ServerProcess

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from satchel_server import dev_mode
from satchel_server.access.bearer import generate_key
from satchel_server.config import settings_from_mapping
from satchel_server.errors import ConfigError
from satchel_server.wiring import wired_server

KEY = generate_key()
Spawn = Callable[..., ServerProcess]


def satchel(spawn: Spawn, *args: str) -> ServerProcess:
    """`python -m satchel_server ARGS`, reading what it prints; no cloud keys of the shell."""
    keys = {name: "" for name in os.environ if name.startswith("ALIBABA_CLOUD_")}
    return spawn("-m", "satchel_server", *args, env=keys, stdout=True)


def stop(child: ServerProcess) -> int:
    child.terminate()
    return child.wait()


CONFIG = f"""
[server]
listen = "0.0.0.0:50051"
health_listen = "0.0.0.0:50052"

[limits]
player_rate_per_second = 0.01
player_burst = 1

[cache]
url = "redis://127.0.0.1:9/0"

[scopes.saves]
bucket = "game-saves"
region = "cn-shanghai"
role_arn = "acs:ram::999999999999:role/saves-role"
external_id = "studio-ext-1"
endpoint = "https://oss-cn-shanghai.aliyuncs.com"
default = true

[scopes.replays]
bucket = "game-replays"
region = "ap-southeast-1"
role_arn = "acs:ram::999999999999:role/replays-role"
endpoint = "https://oss-ap-southeast-1.aliyuncs.com"
prefix_template = "replays/{{player_id}}/"
permissions = ["read", "write"]
default_permissions = ["read", "write"]
ttl_max_seconds = 7200

[callers.game-eu]
keys = ["{KEY.config_entry}"]
[callers.game-eu.scopes.saves]
permissions = ["read", "write"]
[callers.game-eu.scopes.replays]
permissions = ["read", "write"]
methods = ["PUT"]
"""


def test_dev_runs_your_config_on_the_emulator(spawn: Spawn, tmp_path: Path) -> None:
    config = tmp_path / "satchel.toml"
    config.write_text(CONFIG)
    dev = satchel(
        spawn,
        "dev",
        "--config",
        str(config),
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        str(tmp_path),
    )
    address = dev.wait_for(r"gRPC\s+(127\.0\.0\.1:\d+)").group(1)
    metrics = dev.wait_for(r"metrics\s+(http://127\.0\.0\.1:\d+/metrics)").group(1)
    dev.wait_for(r"scope replays: bucket game-replays, region ap-southeast-1, players under")
    bearer = (("authorization", f"Bearer {KEY.key}"),)
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.TokenServiceStub(channel)
        # The callers are yours: no key, no token.
        with pytest.raises(grpc.RpcError) as refused:
            stub.IssueToken(pb.IssueTokenRequest(player_id="p1"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        saves = stub.IssueToken(pb.IssueTokenRequest(player_id="p1"), timeout=10, metadata=bearer)
        assert (saves.location.bucket, saves.location.region) == ("game-saves", "cn-shanghai")
        assert saves.location.prefix == "players/p1/"
        # So are the limits: a second call for the same player within its burst is refused.
        with pytest.raises(grpc.RpcError) as limited:
            stub.IssueToken(pb.IssueTokenRequest(player_id="p1"), timeout=10, metadata=bearer)
        assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # And the second scope, whose bucket the emulator holds in the scope's region.
        put = stub.PresignObject(
            pb.PresignObjectRequest(
                player_id="p2",
                scope="replays",
                key="r.bin",
                method=pb.HTTP_METHOD_PUT,
                content_length=len(b"replay"),
            ),
            timeout=10,
            metadata=bearer,
        )
    assert "/game-replays/replays/p2/r.bin?" in put.url
    upload = urllib.request.Request(put.url, data=b"replay", method="PUT", headers=put.headers)
    with urllib.request.urlopen(upload, timeout=10) as response:
        assert response.status == 200
    with urllib.request.urlopen(metrics, timeout=10) as response:
        text = response.read().decode()
    assert 'satchel_rpc_requests_total{code="OK",method="IssueToken"} 1.0' in text
    assert stop(dev) == 0
    # Neither the health-only port on every interface nor the shared Redis was used.
    output = "".join(dev.output)
    assert "0.0.0.0" not in output
    assert "redis" not in output.lower()


def test_dev_banner_shows_metrics_on_loopback(spawn: Spawn, tmp_path: Path) -> None:
    dev = satchel(spawn, "dev", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path))
    dev.wait_for(r"open to anyone on loopback")
    metrics = dev.wait_for(r"metrics\s+(http://127\.0\.0\.1:\d+/metrics)").group(1)
    with urllib.request.urlopen(metrics, timeout=10) as response:
        assert b"satchel_" in response.read()
    assert stop(dev) == 0


def test_emulator_prints_what_points_satchel_serve_at_it(spawn: Spawn, tmp_path: Path) -> None:
    emulator = satchel(spawn, "emulator", "--data-dir", str(tmp_path))
    emulator.wait_for(r"^# then: satchel serve --config satchel.toml")
    text = "".join(emulator.output)
    environ = dict(re.findall(r"^export (\w+)=(\S+)$", text, re.MULTILINE))
    toml = text[text.index("# satchel.toml") : text.index("# then:")]
    settings = settings_from_mapping(tomllib.loads(toml), environ, source="printed")
    # Printed as `satchel serve` would run it; only the gRPC port is any free one here.
    server_settings = dataclasses.replace(settings.server, listen="127.0.0.1:0")
    settings = dataclasses.replace(settings, server=server_settings)

    async def issue() -> pb.IssueTokenResponse:
        async with wired_server(settings) as server:
            await server.start()
            try:
                async with grpc.aio.insecure_channel(server.address) as channel:
                    stub = pb_grpc.TokenServiceStub(channel)
                    return await stub.IssueToken(pb.IssueTokenRequest(player_id="p1"), timeout=10)
            finally:
                await server.server.stop(None)

    token = asyncio.run(issue())
    assert token.credentials.access_key_id.startswith("STS.")
    assert token.location.bucket == "satchel-dev"
    assert stop(emulator) == 0


def test_scopes_the_emulator_cannot_hold_at_once_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "satchel.toml"
    # Two scopes share a role, but demand different ExternalIds of it.
    config.write_text(
        CONFIG.replace("replays-role", "saves-role").replace(
            'prefix_template = "replays/', 'external_id = "other"\nprefix_template = "replays/'
        )
    )
    with pytest.raises(ConfigError) as refused:
        dev_mode.emulator_accounts(dev_mode.load(config, {}))
    assert refused.value.key == "scopes.saves.external_id"
    assert "the emulator can hold only one" in refused.value.problem
