"""`satchel issue` and `satchel presign`: ask a running server, print the answer as JSON.

satchel issue   --player p1 [--permissions read,write] [--scope S] [--ttl 15m] [--mobile]
satchel presign --player p1 --key save.dat [--method PUT --content-length N] [--content-type T]
                [--expires 10m] [--max-size N] [--forbid-overwrite] [--scope S]
satchel presign --player p1 --key a.png --key b.png ...   (several keys: one PresignObjects
                call with the same options for each; a JSON list, an item's refusal in place)

Connection options, shared by both: --target (default $SATCHEL_TARGET, else 127.0.0.1:50051),
--key-file (default: the key in $SATCHEL_API_KEY, if set), --tls / --tls-ca / --tls-cert /
--tls-key / --tls-server-name, --timeout. `python -m satchel` runs them from the client alone
(`main`); the server's `satchel` command (satchel_server.cli) mounts the same commands with
`add_commands` and hands the parsed arguments to `run`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from satchel.client import SyncClient, Tls
from satchel.errors import SatchelError
from satchel.results import Method, Permission, PresignItem

COMMANDS = ("issue", "presign")
API_KEY_ENV = "SATCHEL_API_KEY"
TARGET_ENV = "SATCHEL_TARGET"
DEFAULT_TARGET = "127.0.0.1:50051"

EXIT_OK = 0
EXIT_CALL_FAILED = 1
EXIT_USAGE = 2

_DURATION = re.compile(r"(\d+)([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """`900`, `90s`, `15m`, `1h30m`, `7d`: whole units, largest first; bare numbers are seconds."""
    text = text.strip().lower()
    if text.isdigit():
        return timedelta(seconds=int(text))
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 900, 90s, 15m or 1h30m")
    return timedelta(seconds=sum(int(n) * _UNIT_SECONDS[u] for n, u in parts))


def parse_permissions(text: str) -> list[Permission]:
    """`read,write`: comma-separated names from read, write, list, delete."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    try:
        return [Permission(name) for name in names]
    except ValueError:
        choices = ", ".join(p.value for p in Permission)
        raise argparse.ArgumentTypeError(f"permissions are {choices}; got {text!r}") from None


def parse_method(text: str) -> Method:
    try:
        return Method(text.strip().upper())
    except ValueError:
        choices = ", ".join(m.value for m in Method)
        raise argparse.ArgumentTypeError(f"method is one of {choices}; got {text!r}") from None


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--target", help=f"server HOST:PORT (default: ${TARGET_ENV}, else {DEFAULT_TARGET})"
    )
    group.add_argument(
        "--key-file",
        type=Path,
        help=f"file holding the API key sent as a bearer token (default: ${API_KEY_ENV})",
    )
    group.add_argument("--tls", action="store_true", help="use TLS with the default trust store")
    group.add_argument("--tls-ca", type=Path, help="PEM roots that sign the server's certificate")
    group.add_argument("--tls-cert", type=Path, help="PEM client certificate chain (mutual TLS)")
    group.add_argument("--tls-key", type=Path, help="PEM client private key (mutual TLS)")
    group.add_argument("--tls-server-name", help="name to check the server's certificate against")
    group.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")


def add_commands(subparsers: Any) -> None:
    """Add `issue` and `presign` to the `satchel` command's subparsers."""
    issue = subparsers.add_parser(
        "issue",
        help="issue a player's STS token and print it as JSON",
        description="Ask a running Satchel for a player's STS credentials, limited to the "
        "player's folder, and print them as JSON.",
    )
    issue.add_argument("--player", required=True, help="player id")
    issue.add_argument(
        "--permissions",
        type=parse_permissions,
        default=[],
        help="comma-separated: read, write, list, delete (default: the scope's defaults)",
    )
    issue.add_argument("--scope", default="", help="scope name (default: the server's default)")
    issue.add_argument("--ttl", type=parse_duration, help="lifetime, e.g. 15m (default: scope's)")
    issue.add_argument(
        "--mobile",
        action="store_true",
        help="print the STS app server JSON that Alibaba's mobile OSS SDKs read",
    )
    add_connection_arguments(issue)

    presign = subparsers.add_parser(
        "presign",
        help="presign one object operation; print JSON",
        description="Ask a running Satchel for a presigned URL (GET, PUT, HEAD, DELETE) or "
        "POST form for one object in a player's folder, and print it as JSON.",
    )
    presign.add_argument("--player", required=True, help="player id")
    presign.add_argument(
        "--key",
        required=True,
        action="append",
        help="object key under the player's prefix; repeat it (up to 100) to presign several "
        "in one call",
    )
    presign.add_argument(
        "--method", type=parse_method, default=Method.GET, help="GET, PUT, HEAD, DELETE or POST"
    )
    presign.add_argument("--scope", default="", help="scope name (default: the server's default)")
    presign.add_argument("--expires", type=parse_duration, help="lifetime, e.g. 10m")
    presign.add_argument("--content-type", default="", help="PUT/POST: required Content-Type")
    presign.add_argument("--max-size", type=int, default=0, help="POST: largest upload in bytes")
    presign.add_argument(
        "--content-length", type=int, default=None, help="PUT (required): the body's exact size"
    )
    presign.add_argument(
        "--forbid-overwrite", action="store_true", help="PUT/POST: never replace an object"
    )
    add_connection_arguments(presign)


class UsageError(Exception):
    """Options that cannot work together, or a key file that cannot be read."""


def api_key_from(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    if args.key_file is not None:
        try:
            return str(args.key_file.read_text()).strip()
        except OSError as exc:
            raise UsageError(f"--key-file: cannot read {args.key_file}: {exc.strerror}") from None
    return environ.get(API_KEY_ENV) or None


def tls_from(args: argparse.Namespace) -> Tls | None:
    paths = (args.tls_ca, args.tls_cert, args.tls_key)
    if not args.tls and not args.tls_server_name and all(p is None for p in paths):
        return None
    try:
        return Tls.from_files(*paths, server_name=args.tls_server_name)
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror}") from None
    except ValueError as exc:  # a certificate without its key, or the reverse
        raise UsageError(f"--tls-cert and --tls-key go together ({exc})") from None


def client_from(args: argparse.Namespace, environ: Mapping[str, str]) -> SyncClient:
    target = args.target or environ.get(TARGET_ENV) or DEFAULT_TARGET
    try:
        return SyncClient(
            target, api_key=api_key_from(args, environ), tls=tls_from(args), timeout=args.timeout
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _call(client: SyncClient, args: argparse.Namespace) -> dict[str, Any] | list[Any]:
    if args.command == "issue":
        token = client.issue_token(args.player, args.permissions, scope=args.scope, ttl=args.ttl)
        return token.sts_server_response() if args.mobile else token.to_dict()
    items = [
        PresignItem(
            key,
            args.method,
            expires_in=args.expires,
            content_type=args.content_type,
            max_size=args.max_size,
            forbid_overwrite=args.forbid_overwrite,
            content_length=args.content_length,
        )
        for key in args.key
    ]
    if len(items) > 1:
        outcomes = client.presign_many(args.player, items, scope=args.scope)
        return [
            {"error": _error_document(outcome)}
            if isinstance(outcome, SatchelError)
            else outcome.to_dict()
            for outcome in outcomes
        ]
    [item] = items
    presigned = client.presign(
        args.player,
        item.key,
        item.method,
        scope=args.scope,
        expires_in=item.expires_in,
        content_type=item.content_type,
        max_size=item.max_size,
        forbid_overwrite=item.forbid_overwrite,
        content_length=item.content_length,
    )
    return presigned.to_dict()


def _error_document(error: SatchelError) -> dict[str, Any]:
    document: dict[str, Any] = {"code": error.code.name, "message": error.message}
    if error.field_violations:
        document["field_violations"] = [
            {"field": v.field, "description": v.description} for v in error.field_violations
        ]
    if error.retry_delay is not None:
        document["retry_delay_seconds"] = error.retry_delay.total_seconds()
    return document


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Run `issue` or `presign`: JSON on stdout and exit 0, or the error as JSON on stderr.

    With several keys the list goes to stdout whatever its items' outcomes, and the exit
    status is 1 when any item was refused.
    """
    try:
        client = client_from(args, os.environ if environ is None else environ)
    except UsageError as exc:
        print(f"satchel {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with client:
        try:
            result = _call(client, args)
        except SatchelError as error:
            print(json.dumps({"error": _error_document(error)}, indent=2), file=sys.stderr)
            return EXIT_CALL_FAILED
    # The output holds secrets by design (this is how a human asks for a token); it goes to
    # stdout only, never to a log.
    print(json.dumps(result, indent=2))
    refused = isinstance(result, list) and any("error" in item for item in result)
    return EXIT_CALL_FAILED if refused else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m satchel issue|presign ...`: the client's commands without the server."""
    parser = argparse.ArgumentParser(
        prog="python -m satchel", description="Ask a running Satchel server; print JSON."
    )
    add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return run(parser.parse_args(argv))
