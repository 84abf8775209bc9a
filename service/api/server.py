"""Builds and runs the grpc.aio server: TokenService, health, reflection, drain.

`build_server` is the one factory; tests and the CLI both use it, so what the
tests bind on 127.0.0.1:0 is the server that runs in production.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from service.api.servicer import TokenService
from service.config import ServerSettings, parse_listen_address

log = logging.getLogger(__name__)

TOKEN_SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["TokenService"].full_name
# "" is the whole server's health, which is what load balancers and
# `satchel health` ask about by default.
HEALTH_SERVICE_NAMES = ("", TOKEN_SERVICE_NAME)


class ListenError(RuntimeError):
    """The server could not bind its configured address."""


@dataclass(slots=True)
class SatchelServer:
    """A built, not yet started, server and the handles needed to run and drain it."""

    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    host: str
    grace_seconds: float
    # Called once the server accepts calls and reports SERVING (the dev banner).
    on_started: Callable[[], None] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        await self.server.start()
        for name in HEALTH_SERVICE_NAMES:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("satchel listening on %s", self.address)
        if self.on_started is not None:
            self.on_started()

    async def drain(self) -> None:
        """Report NOT_SERVING, refuse new calls, let in-flight ones finish within the grace."""
        log.info("draining: in-flight calls have %.1f s to finish", self.grace_seconds)
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.grace_seconds)
        log.info("stopped")

    async def serve_until_signalled(self) -> None:
        """Run until SIGTERM or SIGINT, then drain. Returns normally so the process exits 0."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await self.start()
            await stop.wait()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            await self.drain()


def build_server(
    settings: ServerSettings, token_service: pb_grpc.TokenServiceServicer | None = None
) -> SatchelServer:
    """Create the server, register every service and bind the listen address."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # Without this a second server on the same port would silently share
            # its traffic; a port conflict must be an error at start-up.
            ("grpc.so_reuseport", 0),
        ]
    )
    pb_grpc.add_TokenServiceServicer_to_server(token_service or TokenService(), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if settings.reflection:
        reflection.enable_server_reflection(
            (TOKEN_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
    host, _ = parse_listen_address(settings.listen)
    try:
        port = server.add_insecure_port(settings.listen)
    except RuntimeError as exc:  # grpcio raises instead of returning 0 since 1.5x
        raise ListenError(f"cannot listen on {settings.listen}: {exc}") from None
    if port == 0:
        raise ListenError(f"cannot listen on {settings.listen}")
    return SatchelServer(server, health_servicer, port, host, settings.grace_seconds)
