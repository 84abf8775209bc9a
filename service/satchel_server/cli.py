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
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from satchel import cli as client_cli
from satchel_server import __version__, dev_mode, wiring
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


DESCRIPTION = """\
Satchel gives each player of your game short-lived access to their own folder in
Alibaba Cloud OSS: your game servers ask it for a player's STS credentials or for
a presigned URL, and the player's app talks to OSS directly.

Start with `satchel dev`: a server on 127.0.0.1:50051 beside a local STS + OSS
emulator, no cloud account needed. Run `satchel COMMAND --help` for a command's
options."""


def _command(commands: Any, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=description
    )
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="satchel",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"satchel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = _command(
        commands,
        "serve",
        "run the server from configuration",
        "Run Satchel for real: scopes, callers and limits come from a TOML file, the "
        "Alibaba Cloud access key from ALIBABA_CLOUD_ACCESS_KEY_ID and "
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET. Stops gracefully on SIGTERM.",
    )
    serve.add_argument(
        "--config", type=Path, help="TOML settings file (default: $SATCHEL_CONFIG, else defaults)"
    )

    dev = _command(
        commands,
        "dev",
        "run beside the embedded STS + OSS emulator",
        "Try Satchel without a cloud account: a server beside a local STS + OSS emulator, "
        "with one scope ('dev') or your own settings file (--config), open to anyone on "
        "loopback. Stop it with Ctrl-C.",
    )
    dev.add_argument("--listen", default=DEV_LISTEN, help=f"gRPC address (default {DEV_LISTEN})")
    dev.add_argument(
        "--data-dir",
        type=Path,
        default=DEV_DATA_DIR,
        help="where the emulator keeps objects and dev its audit log",
    )
    dev.add_argument(
        "--config",
        type=Path,
        help="run this settings file on the emulator: its STS and OSS endpoints, role ARNs' "
        "account and AccessKey are replaced, its buckets and roles created there; "
        "[cache] url and health_listen are left out",
    )
    dev.add_argument(
        "--metrics",
        default=dev_mode.DEV_METRICS_LISTEN,
        help="Prometheus /metrics address (default 127.0.0.1:0, any free loopback port; "
        "the banner shows the URL)",
    )

    emulator = _command(
        commands,
        "emulator",
        "run the STS + OSS emulator alone; prints the (fake) AccessKey, role ARN, bucket, "
        "region and endpoints that point `satchel serve` at it",
        "Run the local STS + OSS emulator without Satchel, for testing your own code "
        "against it with the official Alibaba Cloud SDKs, or `satchel serve` with your "
        "own settings file.",
    )
    emulator.add_argument("--sts-port", type=int, default=0, help="default: any free port")
    emulator.add_argument("--oss-port", type=int, default=0, help="default: any free port")
    emulator.add_argument(
        "--data-dir", type=Path, default=DEV_DATA_DIR, help="where the emulator keeps objects"
    )
    emulator.add_argument("--accounts", type=Path, help="accounts TOML (default: the dev set)")

    check = _command(
        commands,
        "health",
        "ask a running server's health service",
        "Exit 0 when a running Satchel reports SERVING, 1 otherwise: for container health "
        "checks and scripts.",
    )
    check.add_argument("--target", help="HOST:PORT (default: the configured listen address)")
    check.add_argument("--config", type=Path, help="TOML settings file, to find the address")
    check.add_argument("--service", default="", help="service name; empty is the whole server")
    check.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")

    checkup = _command(
        commands,
        "doctor",
        "check a deployment: config, credentials, STS, clock, each scope's role and "
        "bucket, Redis; exits 1 on any failure",
        "Check that a deployment can work before you serve from it: the settings file, "
        "Satchel's own credentials, STS, the clock, each scope's role and bucket, and "
        "Redis. Exits 1 on any failure, naming what to fix.",
    )
    checkup.add_argument(
        "--config", type=Path, help="TOML settings file (default: $SATCHEL_CONFIG, else defaults)"
    )

    keygen = _command(
        commands,
        "keygen",
        "print a new bearer key for a caller",
        "Print a new bearer key for one of your game servers, and the line that lets "
        "Satchel recognise it. Satchel keeps only the key's hash.",
    )
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


async def _dev(args: argparse.Namespace) -> None:
    # Your configuration, or the built-in one; either way pointed at the emulator.
    own = dev_mode.load(args.config, os.environ) if args.config else None
    accounts = dev_mode.emulator_accounts(own) if own is not None else None
    emulator = await start_emulator(EmulatorConfig(data_dir=args.data_dir, accounts=accounts))
    try:
        settings = dev_mode.on_emulator(
            own or wiring.dev_settings(args.listen, emulator),
            emulator,
            listen=args.listen,
            metrics_listen=args.metrics,
            audit_file=args.data_dir / dev_mode.DEV_AUDIT_FILE,
        )
        require_caller_authentication(settings)  # without callers: loopback only
        await wiring.serve(settings, lambda server: dev_mode.banner(settings, emulator, server))
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
            print(dev_mode.serve_instructions(emulator, args.accounts), flush=True)
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
            _check_listen_argument(args.listen)
            _configure_logging("INFO")
            args.data_dir.mkdir(parents=True, exist_ok=True)  # for the audit log
            asyncio.run(_dev(args))
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
