"""Satchel wired exactly as `satchel dev` wires it, against an emulator, all in-process."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from satchel.v1 import token_service_pb2_grpc as pb_grpc
from satchel_server.api.server import SatchelServer
from satchel_server.config import Settings
from satchel_server.emulator.runner import Emulator
from satchel_server.wiring import dev_settings, wired_server


@dataclass
class Stack:
    emulator: Emulator
    settings: Settings
    server: SatchelServer
    stub: pb_grpc.TokenServiceAsyncStub


@asynccontextmanager
async def running_stack(
    emulator: Emulator,
    settings: Settings | None = None,
    channel_credentials: grpc.ChannelCredentials | None = None,
    **sts_overrides: Any,
) -> AsyncIterator[Stack]:
    """`settings` default to `satchel dev`'s; `channel_credentials` make the channel TLS."""
    settings = settings or dev_settings("127.0.0.1:0", emulator)
    if sts_overrides:
        settings = dataclasses.replace(
            settings, sts=dataclasses.replace(settings.sts, **sts_overrides)
        )
    async with wired_server(settings) as server:
        await server.start()
        try:
            if channel_credentials is None:
                channel = grpc.aio.insecure_channel(server.address)
            else:
                channel = grpc.aio.secure_channel(server.address, channel_credentials)
            async with channel:
                yield Stack(emulator, settings, server, pb_grpc.TokenServiceStub(channel))
        finally:
            await server.server.stop(None)
