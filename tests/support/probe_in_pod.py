"""Run inside a pod network (support.pod_network): start Satchel with the container's
[server] settings beside the emulator, ask health on ADDRESS:PORT, print the status.

Usage: python -m support.probe_in_pod ADDRESS PORT CONTAINER_TOML DATA_DIR
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import tomllib
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from satchel_server.config import settings_from_mapping
from satchel_server.emulator.runner import start_emulator
from satchel_server.emulator.state import EmulatorConfig
from satchel_server.wiring import dev_settings, wired_server


async def probe(address: str, port: int, container_toml: str, data_dir: Path) -> str:
    document = tomllib.loads(container_toml)
    shipped = settings_from_mapping({"server": document["server"]}, {}).server
    emulator = await start_emulator(EmulatorConfig(data_dir=data_dir))
    try:
        settings = dev_settings("127.0.0.1:0", emulator)
        # The main port stays on loopback (nothing here needs it); health is as shipped.
        server_settings = dataclasses.replace(shipped, listen="127.0.0.1:0")
        settings = dataclasses.replace(settings, server=server_settings)
        async with wired_server(settings) as server:
            await server.start()
            try:
                async with grpc.aio.insecure_channel(f"{address}:{port}") as channel:
                    reply = await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=10
                    )
            finally:
                await server.drain()
    finally:
        await emulator.stop()
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


if __name__ == "__main__":
    address, port, toml_path, data_dir = sys.argv[1:5]
    print(asyncio.run(probe(address, int(port), Path(toml_path).read_text(), Path(data_dir))))
