"""Builds and runs the grpc.aio server: TokenService, health, reflection, drain.

`build_server` is the one factory; tests and the CLI both use it, so what the
tests bind on 127.0.0.1:0 is the server that runs in production.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from satchel_server.api.reflection import enable_reflection
from satchel_server.api.servicer import TokenService
from satchel_server.config import ServerSettings, TlsSettings, parse_listen_address
from satchel_server.errors import ConfigError

log = logging.getLogger(__name__)

TOKEN_SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["TokenService"].full_name
# "" is the whole server's health, which is what load balancers and
# `satchel health` ask about by default.
HEALTH_SERVICE_NAMES = ("", TOKEN_SERVICE_NAME)
READY_POLL_SECONDS = 0.2
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
MIN_CLIENT_PING_MS = 10_000
# Largest response: a PresignObjects answer of 100 URLs or forms is ~100 KiB, at most
# ~1 MiB with the longest keys. 4 MiB is what gRPC clients accept by default.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024


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
    # Called once the server accepts calls (the dev banner).
    on_started: Callable[[], None] | None = None
    # SERVING is reported only once this says so (signer credentials held); None: at once.
    ready: Callable[[], bool] | None = None
    # The optional plaintext, health-only listener (probes when the main port needs TLS).
    health_server: grpc.aio.Server | None = None
    health_host: str = ""
    health_port: int = 0
    # Where Prometheus metrics are served over HTTP (0: not served); set by the wiring.
    metrics_port: int = 0
    _becoming_ready: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        await self.server.start()
        if self.health_server is not None:
            await self.health_server.start()
        if self.ready is None or self.ready():
            await self._report(health_pb2.HealthCheckResponse.SERVING)
        else:
            await self._report(health_pb2.HealthCheckResponse.NOT_SERVING)
            self._becoming_ready = asyncio.create_task(self._serve_when_ready(self.ready))
        log.info("satchel listening on %s", self.address)
        if self.health_server is not None:
            log.info("health listening on %s:%d", self.health_host, self.health_port)
        if self.on_started is not None:
            self.on_started()

    async def _report(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for name in HEALTH_SERVICE_NAMES:
            await self.health.set(name, status)

    async def _serve_when_ready(self, ready: Callable[[], bool]) -> None:
        log.warning("NOT_SERVING until every scope's presigning credentials are held")
        # A short poll, only while not ready: readiness belongs to other objects.
        while not ready():  # noqa: ASYNC110
            await asyncio.sleep(READY_POLL_SECONDS)
        await self._report(health_pb2.HealthCheckResponse.SERVING)
        log.info("ready: SERVING")

    async def drain(self) -> None:
        """Report NOT_SERVING, refuse new calls, let in-flight ones finish within the grace."""
        if self._becoming_ready is not None:
            self._becoming_ready.cancel()
        await self.health.enter_graceful_shutdown()
        # stop() refuses new calls in its first step, before it waits out the grace: one
        # turn of the loop lets that step run, so "draining" is said only once it is true.
        stopping = asyncio.ensure_future(self.server.stop(self.grace_seconds))
        await asyncio.sleep(0)
        log.info("draining: in-flight calls have %.1f s to finish", self.grace_seconds)
        await stopping
        if self.health_server is not None:
            await self.health_server.stop(None)
        log.info("stopped")

    async def serve_until_signalled(self) -> None:
        """Run until SIGTERM or SIGINT, then drain. Returns normally so the process exits 0."""
        try:
            async with stop_signalled() as stop:
                await self.start()
                await stop.wait()
        finally:
            await self.drain()


@asynccontextmanager
async def stop_signalled() -> AsyncIterator[asyncio.Event]:
    """An event that SIGTERM or SIGINT sets while the block runs.

    The handlers are removed on leaving, so a second signal during a drain gets
    the default action and ends the process, as an operator expects.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    try:
        yield stop
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


def _read_pem(key: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"tls.{key}", f"cannot read {path}: {exc}") from None


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials | None:
    """TLS from the configured PEM files; with a client CA, client certificates are required.

    None when no certificate is configured (plaintext). A client whose certificate
    does not chain to the CA, or that sends none, fails the TLS handshake: it never
    reaches a handler, so it sees UNAVAILABLE rather than UNAUTHENTICATED.
    """
    if not tls.cert_file:
        return None
    pair = (_read_pem("key_file", tls.key_file), _read_pem("cert_file", tls.cert_file))
    client_ca = _read_pem("client_ca_file", tls.client_ca_file) if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def build_server(
    settings: ServerSettings,
    token_service: pb_grpc.TokenServiceServicer | None = None,
    *,
    credentials: grpc.ServerCredentials | None = None,
    ready: Callable[[], bool] | None = None,
) -> SatchelServer:
    """Create the server, register every service and bind the listen address.

    `token_service`: the TokenService servicer (default: an unconfigured
    TokenService, which answers FAILED_PRECONDITION).
    `credentials`: TLS (see `server_credentials`); None serves plaintext.
    `ready`: health reports SERVING only once this returns True.
    """
    server = grpc.aio.server(
        options=_channel_options(settings),
        # Beyond this, grpc answers RESOURCE_EXHAUSTED at once instead of queueing.
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    pb_grpc.add_TokenServiceServicer_to_server(token_service or TokenService(), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if settings.reflection:
        enable_reflection((TOKEN_SERVICE_NAME, health.SERVICE_NAME), server)
    host, _ = parse_listen_address(settings.listen)
    try:
        if credentials is None:
            port = server.add_insecure_port(settings.listen)
        else:
            port = server.add_secure_port(settings.listen, credentials)
    except RuntimeError:  # grpcio raises instead of returning 0 since 1.5x
        port = 0
    if port == 0:
        raise ListenError(
            f"cannot listen on {settings.listen}: is another process using the port? "
            "Choose another address with --listen (satchel dev) or [server] listen "
            "(satchel serve)"
        )
    built = SatchelServer(server, health_servicer, port, host, settings.grace_seconds, ready=ready)
    if settings.health_listen:
        built.health_host, _ = parse_listen_address(settings.health_listen)
        built.health_server, built.health_port = _health_only(
            settings.health_listen, health_servicer
        )
    return built


def _channel_options(settings: ServerSettings) -> list[tuple[str, int]]:
    keepalive_ms = int(settings.keepalive_seconds * 1000)
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", MAX_RESPONSE_BYTES),
        # Without this a second server on the same port would silently share
        # its traffic; a port conflict must be an error at start-up.
        ("grpc.so_reuseport", 0),
        # Old connections are closed gracefully so clients rebalance over replicas.
        ("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000)),
        ("grpc.max_connection_age_grace_ms", int(settings.max_connection_age_grace_seconds * 1000)),
        # Ping idle clients to find dead connections; let well-behaved clients keep
        # idle connections alive, but no more often than every 10 s (2 strikes, then GOAWAY).
        ("grpc.keepalive_time_ms", keepalive_ms),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", MIN_CLIENT_PING_MS),
        ("grpc.http2.max_ping_strikes", 2),
    ]


def _health_only(listen: str, servicer: health.aio.HealthServicer) -> tuple[grpc.aio.Server, int]:
    """A plaintext server with only the health service, sharing the main server's status."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError as exc:
        raise ListenError(f"cannot listen on {listen} (health): {exc}") from None
    return server, port
