"""The `satchel` command: the composition root that reads configuration and wires parts.

satchel serve    [--config PATH]      run from configuration (production)
satchel dev      [--listen ADDR]      run beside the embedded STS + OSS emulator
satchel emulator [--sts-port N ...]   run the emulator alone
satchel health   [--target ADDR]      exit 0 only when the server reports SERVING
satchel issue    --player ID ...      ask a running server for a token; print JSON
satchel presign  --player ID --key K  ask a running server for a presigned URL or form
satchel --version
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from satchel import cli as client_cli

from service import __version__, logs
from service.api.server import ListenError, build_server
from service.api.servicer import TokenService
from service.broker import CredentialBroker
from service.budget import TokenBucket
from service.config import (
    ACCESS_KEY_ID_ENV,
    ACCESS_KEY_SECRET_ENV,
    Settings,
    load_settings,
    parse_listen_address,
    require_complete,
    settings_from_mapping,
)
from service.emulator import accounts as dev_account
from service.emulator.runner import Emulator, start_emulator
from service.emulator.state import EmulatorConfig
from service.errors import ConfigError
from service.presign import Presigner
from service.signer import ScopeSigner, Signers
from service.transport.http import new_session
from service.transport.sts import AliyunStsClient

log = logging.getLogger("satchel")

EXIT_OK = 0
EXIT_UNHEALTHY = 1
EXIT_BAD_CONFIG = 2

DEV_LISTEN = "127.0.0.1:50051"
DEV_DATA_DIR = Path(".satchel-data")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="satchel", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"satchel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server from configuration")
    serve.add_argument(
        "--config", type=Path, help="TOML settings file (default: $SATCHEL_CONFIG, else defaults)"
    )

    dev = commands.add_parser("dev", help="run beside the embedded STS + OSS emulator")
    dev.add_argument("--listen", default=DEV_LISTEN, help=f"gRPC address (default {DEV_LISTEN})")
    dev.add_argument(
        "--data-dir", type=Path, default=DEV_DATA_DIR, help="where the emulator keeps objects"
    )

    emulator = commands.add_parser("emulator", help="run the STS + OSS emulator alone")
    emulator.add_argument("--sts-port", type=int, default=0, help="default: any free port")
    emulator.add_argument("--oss-port", type=int, default=0, help="default: any free port")
    emulator.add_argument("--data-dir", type=Path, default=DEV_DATA_DIR)
    emulator.add_argument("--accounts", type=Path, help="accounts TOML (default: the dev set)")

    check = commands.add_parser("health", help="ask a running server's health service")
    check.add_argument("--target", help="HOST:PORT (default: the configured listen address)")
    check.add_argument("--config", type=Path, help="TOML settings file, to find the address")
    check.add_argument("--service", default="", help="service name; empty is the whole server")
    check.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")

    client_cli.add_commands(commands)  # issue, presign: the Python client's human face
    return parser


def _configure_logging(level: str, log_format: str = "text") -> None:
    logs.configure(level, json_lines=log_format == "json")


@asynccontextmanager
async def wired_token_service(settings: Settings) -> AsyncIterator[TokenService]:
    """The real TokenService: one aiohttp session, the STS client, budget, broker, signers."""
    assert settings.access_key is not None  # require_complete() checked it
    access_key = settings.access_key
    async with new_session() as session:
        sts = AliyunStsClient(session, settings.sts, access_key)
        budget = TokenBucket(settings.sts.budget_per_second)
        broker = CredentialBroker(sts, settings.cache, budget)
        signers = Signers(
            {
                name: ScopeSigner(scope, sts, budget, access_key)
                for name, scope in settings.scopes.items()
            }
        )
        # Presigning credentials first, so the first PresignObject does not wait on STS.
        await signers.start()
        try:
            yield TokenService(settings.scopes, broker, Presigner(settings.scopes, signers))
        finally:
            await signers.stop()
            await broker.close()


async def _serve(settings: Settings, banner: Callable[[str], str] | None = None) -> None:
    async with wired_token_service(settings) as token_service:
        server = build_server(settings.server, token_service)
        if banner is not None:
            server.on_started = lambda: print(banner(server.address), flush=True)
        await server.serve_until_signalled()


def _run(settings: Settings) -> int:
    _configure_logging(settings.log.level, settings.log.format)
    log.info("satchel %s starting (settings from %s)", __version__, settings.source)
    require_complete(settings)
    asyncio.run(_serve(settings))
    return EXIT_OK


def _check_listen_argument(listen: str) -> None:
    try:
        parse_listen_address(listen)
    except ValueError as exc:
        raise ConfigError("--listen", str(exc)) from None


def dev_settings(listen: str, emulator: Emulator) -> Settings:
    """Settings that point Satchel at a running emulator and its built-in dev account."""
    document = {
        "server": {"listen": listen, "reflection": True},
        "sts": {"endpoint": emulator.sts_url},
        "scopes": {
            "dev": {
                "bucket": dev_account.DEV_BUCKET,
                "region": dev_account.DEV_REGION,
                "role_arn": dev_account.DEV_ROLE_ARN,
                "endpoint": emulator.oss_url,
                "addressing": "path",
                "default_permissions": ["read", "write", "list"],
            }
        },
    }
    environ = {
        ACCESS_KEY_ID_ENV: dev_account.DEV_ACCESS_KEY_ID,
        ACCESS_KEY_SECRET_ENV: dev_account.DEV_ACCESS_KEY_SECRET,
    }
    return settings_from_mapping(document, environ, source="built-in dev settings")


DEV_BANNER = """
Satchel dev is running: open to anyone on loopback, no caller authentication.
  gRPC          {grpc}   (reflection on)
  STS emulator  {sts}
  OSS emulator  {oss}   (path-style)
  bucket        {bucket}, region {region}, players under players/<id>/
Try:
  grpcurl -plaintext -d '{{"player_id": "p1", "permissions": ["PERMISSION_READ"]}}' \\
      {grpc} satchel.v1.TokenService/IssueToken
"""


async def _dev(listen: str, data_dir: Path) -> None:
    emulator = await start_emulator(EmulatorConfig(data_dir=data_dir))
    try:
        settings = dev_settings(listen, emulator)

        def banner(address: str) -> str:
            return DEV_BANNER.format(
                grpc=address,
                sts=emulator.sts_url,
                oss=emulator.oss_url,
                bucket=dev_account.DEV_BUCKET,
                region=dev_account.DEV_REGION,
            )

        await _serve(settings, banner)
    finally:
        await emulator.stop()


async def _emulator_alone(args: argparse.Namespace) -> None:
    config = EmulatorConfig(
        data_dir=args.data_dir,
        accounts_file=args.accounts,
        sts_port=args.sts_port,
        oss_port=args.oss_port,
    )
    emulator = await start_emulator(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        log.info("emulator STS listening on %s", emulator.sts_url)
        log.info("emulator OSS listening on %s", emulator.oss_url)
        await stop.wait()
    finally:
        await emulator.stop()


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
            return _run(load_settings(args.config, os.environ))
        if args.command == "dev":
            _configure_logging("INFO")
            _check_listen_argument(args.listen)
            asyncio.run(_dev(args.listen, args.data_dir))
            return EXIT_OK
        if args.command == "emulator":
            _configure_logging("INFO")
            asyncio.run(_emulator_alone(args))
            return EXIT_OK
        if args.command in client_cli.COMMANDS:
            return client_cli.run(args)
        return _health(args)
    except (ConfigError, ListenError) as exc:
        print(f"satchel: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
