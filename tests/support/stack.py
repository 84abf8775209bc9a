"""Satchel wired exactly as `satchel dev` wires it, against an emulator, all in-process."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from satchel.v1 import token_service_pb2_grpc as pb_grpc
from service.api.server import SatchelServer, build_server
from service.cli import dev_settings, wired_token_service
from service.config import Settings
from service.emulator.runner import Emulator


@dataclass
class Stack:
    emulator: Emulator
    settings: Settings
    server: SatchelServer
    stub: pb_grpc.TokenServiceAsyncStub


@asynccontextmanager
async def running_stack(emulator: Emulator, **sts_overrides: Any) -> AsyncIterator[Stack]:
    settings = dev_settings("127.0.0.1:0", emulator)
    if sts_overrides:
        settings = dataclasses.replace(
            settings, sts=dataclasses.replace(settings.sts, **sts_overrides)
        )
    async with wired_token_service(settings) as token_service:
        server = build_server(settings.server, token_service)
        await server.start()
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                yield Stack(emulator, settings, server, pb_grpc.TokenServiceStub(channel))
        finally:
            await server.server.stop(None)
