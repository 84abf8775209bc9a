"""The Deployment's probes reach the pod: a server started with the container's config
answers health on the probe's port at a non-loopback address of this machine.

The kubelet connects to the pod IP, never the container's loopback, so an answer on
127.0.0.1 alone would prove nothing. This test binds the probe's fixed port on every
interface, as the container does; it is the one test that cannot use 127.0.0.1:0.
"""

from __future__ import annotations

import dataclasses
import fcntl
import ipaddress
import socket
import struct
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
import yaml
from component.emulator_fixtures import emulator
from grpc_health.v1 import health_pb2, health_pb2_grpc

from satchel_server.config import ServerSettings, settings_from_mapping
from satchel_server.emulator.runner import Emulator
from satchel_server.wiring import dev_settings, wired_server

__all__ = ["emulator"]

REPO = Path(__file__).resolve().parents[2]
SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address


def non_loopback_ipv4() -> str | None:
    """An IPv4 address of one of this machine's own interfaces, other than loopback."""
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                packed = fcntl.ioctl(
                    probe.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15].encode())
                )
            except OSError:
                continue  # no IPv4 address on this interface
        address = socket.inet_ntoa(packed[20:24])
        if not ipaddress.ip_address(address).is_loopback:
            return address
    return None


def probe_ports() -> set[int]:
    deployment = yaml.safe_load((REPO / "deploy/kubernetes/deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {
        container[probe]["grpc"]["port"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
    }


def container_server_settings() -> ServerSettings:
    document = tomllib.loads((REPO / "deploy/satchel.container.toml").read_text())
    return settings_from_mapping({"server": document["server"]}, {}).server


@pytest_asyncio.fixture
async def pod_address() -> AsyncIterator[str]:
    address = non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no network interface with an address besides loopback")
    yield address


def skip_unless_free(port: int) -> None:
    """The port is fixed by the manifest: on a shared machine another process may hold it."""
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as exc:
            pytest.skip(f"port {port} is held by another process on this machine: {exc}")


@pytest.mark.asyncio
async def test_probe_port_answers_serving_on_a_non_loopback_address(
    emulator: Emulator, pod_address: str
) -> None:
    (port,) = probe_ports()
    skip_unless_free(port)
    server_settings = container_server_settings()
    # The main port stays on loopback (nothing here needs it); health is as shipped.
    settings = dev_settings("127.0.0.1:0", emulator)
    settings = dataclasses.replace(
        settings, server=dataclasses.replace(server_settings, listen="127.0.0.1:0")
    )
    assert server_settings.health_listen.endswith(f":{port}")
    async with wired_server(settings) as server:
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"{pod_address}:{port}") as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
        finally:
            await server.drain()  # both listeners: the fixed port is free again
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
