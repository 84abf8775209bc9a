"""The `satchel` command: the composition root that reads configuration and wires parts.

satchel serve   [--config PATH]       run from configuration (production)
satchel dev     [--listen ADDR]       run with a ready local configuration
satchel health  [--target ADDR]       exit 0 only when the server reports SERVING
satchel --version
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service import __version__
from service.api.server import ListenError, build_server
from service.config import Settings, load_settings, parse_listen_address, settings_from_mapping
from service.errors import ConfigError

log = logging.getLogger("satchel")

EXIT_OK = 0
EXIT_UNHEALTHY = 1
EXIT_BAD_CONFIG = 2

DEV_LISTEN = "127.0.0.1:50051"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="satchel", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"satchel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server from configuration")
    serve.add_argument(
        "--config", type=Path, help="TOML settings file (default: $SATCHEL_CONFIG, else defaults)"
    )

    dev = commands.add_parser("dev", help="run locally with a ready configuration")
    dev.add_argument("--listen", default=DEV_LISTEN, help=f"gRPC address (default {DEV_LISTEN})")

    check = commands.add_parser("health", help="ask a running server's health service")
    check.add_argument("--target", help="HOST:PORT (default: the configured listen address)")
    check.add_argument("--config", type=Path, help="TOML settings file, to find the address")
    check.add_argument("--service", default="", help="service name; empty is the whole server")
    check.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    return parser


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


async def _serve(settings: Settings) -> None:
    server = build_server(settings.server)
    await server.serve_until_signalled()


def _run_server(settings: Settings) -> int:
    _configure_logging(settings.log.level)
    log.info("satchel %s starting (settings from %s)", __version__, settings.source)
    try:
        asyncio.run(_serve(settings))
    except ListenError as exc:
        print(f"satchel: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    return EXIT_OK


def _dev_settings(listen: str) -> Settings:
    # Validated like a file would be, so a bad --listen gets the same clear error.
    document = {"server": {"listen": listen, "reflection": True}}
    return settings_from_mapping(document, {}, source="built-in dev settings")


def _health_target(args: argparse.Namespace) -> str:
    if args.target:
        return str(args.target)
    listen = load_settings(args.config, os.environ).server.listen
    host, port = parse_listen_address(listen)
    # A wildcard bind address is reachable through loopback from inside the host.
    if host in ("0.0.0.0", "[::]", ""):  # noqa: S104 - comparing, not binding
        host = "127.0.0.1"
    return f"{host}:{port}"


def _health(args: argparse.Namespace) -> int:
    target = _health_target(args)
    request = health_pb2.HealthCheckRequest(service=args.service)
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=args.timeout)
        except grpc.RpcError as exc:
            print(f"{target}: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return EXIT_UNHEALTHY
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{target}: {status}")
    return EXIT_OK if reply.status == health_pb2.HealthCheckResponse.SERVING else EXIT_UNHEALTHY


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _run_server(load_settings(args.config, os.environ))
        if args.command == "dev":
            return _run_server(_dev_settings(args.listen))
        return _health(args)
    except ConfigError as exc:
        print(f"satchel: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
