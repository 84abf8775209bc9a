"""The `satchel` command: run Satchel, try it, check it, and call it.

satchel serve    [--config PATH]      run from configuration (production)
satchel dev      [--listen ADDR]      run beside the embedded STS + OSS emulator
satchel emulator [--sts-port N ...]   run the emulator alone
satchel health   [--target ADDR]      exit 0 only when the server reports SERVING
satchel doctor   [--config PATH]      check a deployment (STS, OSS, Redis) before players do
satchel keygen   --caller NAME        print a new bearer key and the line to configure it
satchel issue    --player ID ...      ask a running server for a token; print JSON
satchel presign  --player ID --key K  ask a running server for a presigned URL or form
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

from satchel import cli as client_cli
from satchel_server import __version__, wiring
from satchel_server.access.bearer import generate_key
from satchel_server.api.server import (
    ListenError,
    stop_signalled,
)
from satchel_server.config import (
    Settings,
    is_valid_name,
    load_settings,
    parse_listen_address,
    require_caller_authentication,
    require_complete,
)
from satchel_server.doctor import run as doctor
from satchel_server.emulator import accounts as dev_account
from satchel_server.emulator.runner import start_emulator
from satchel_server.emulator.state import EmulatorConfig
from satchel_server.errors import ConfigError
from satchel_server.observability import logs

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

    checkup = commands.add_parser(
        "doctor",
        help="check a deployment: config, credentials, STS, clock, each scope's role and "
        "bucket, Redis; exits 1 on any failure",
    )
    checkup.add_argument(
        "--config", type=Path, help="TOML settings file (default: $SATCHEL_CONFIG, else defaults)"
    )

    keygen = commands.add_parser("keygen", help="print a new bearer key for a caller")
    keygen.add_argument("--caller", required=True, help="the [callers.NAME] the key is for")

    client_cli.add_commands(commands)  # issue, presign: the Python client's human face
    return parser


def _configure_logging(level: str, log_format: str = "text") -> None:
    logs.configure(level, json_lines=log_format == "json")


def _run(settings: Settings) -> int:
    _configure_logging(settings.log.level, settings.log.format)
    log.info("satchel %s starting (settings from %s)", __version__, settings.source)
    require_complete(settings)
    asyncio.run(wiring.serve(settings))
    return EXIT_OK


def _check_listen_argument(listen: str) -> None:
    try:
        parse_listen_address(listen)
    except ValueError as exc:
        raise ConfigError("--listen", str(exc)) from None


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
        settings = wiring.dev_settings(listen, emulator)
        require_caller_authentication(settings)  # dev has no callers: loopback only

        def banner(address: str) -> str:
            return DEV_BANNER.format(
                grpc=address,
                sts=emulator.sts_url,
                oss=emulator.oss_url,
                bucket=dev_account.DEV_BUCKET,
                region=dev_account.DEV_REGION,
            )

        await wiring.serve(settings, banner)
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
    try:
        async with stop_signalled() as stop:
            log.info("emulator STS listening on %s", emulator.sts_url)
            log.info("emulator OSS listening on %s", emulator.oss_url)
            log.info("emulator metadata service and credentials URI on %s", emulator.identity_url)
            await stop.wait()
    finally:
        await emulator.stop()


def _health_target(args: argparse.Namespace) -> str:
    if args.target:
        return str(args.target)
    server = load_settings(args.config, os.environ).server
    # The health-only port when there is one: it needs no TLS or client certificate.
    host, port = parse_listen_address(server.health_listen or server.listen)
    # A wildcard bind address is reachable through loopback from inside the host.
    if host in ("0.0.0.0", "[::]", ""):  # noqa: S104 - comparing, not binding
        host = "127.0.0.1"
    return f"{host}:{port}"


def _keygen(caller: str) -> int:
    if not is_valid_name(caller):
        raise ConfigError("--caller", "a caller name is 1-32 of a-z 0-9 _ -")
    new = generate_key()
    print(f"# The key for caller {caller!r}. It is shown only once; Satchel keeps only its hash.")
    print(new.key)
    print(f"# Configuration: under [callers.{caller}]. To rotate, add the entry to the existing")
    print("# keys, give the caller the new key, then remove the old entry.")
    print(f"[callers.{caller}]")
    print(f'keys = ["{new.config_entry}"]')
    return EXIT_OK


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


def _checks(args: argparse.Namespace) -> int:
    """The commands that check or print and exit: keygen, health, doctor."""
    if args.command == "doctor":
        return doctor.main(args.config, os.environ)
    return _keygen(args.caller) if args.command == "keygen" else _health(args)


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
        return _checks(args)
    except (ConfigError, ListenError) as exc:
        print(f"satchel: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
