"""`satchel dev`: Satchel beside the embedded emulator, on the built-in settings or yours.

With `--config FILE`, the file runs as written (callers and grants, limits, audit, TLS,
every scope's rules and lifetimes) except for what must change to run on this machine:
- `[sts] endpoint` and every scope's `endpoint` point at the emulator (path-style);
- each scope's `role_arn` moves to the emulator's dev account, keeping the role's name;
  the emulator holds that role (trusting the dev user, demanding the scope's ExternalId,
  with a MaxSessionDuration that covers the scope's lifetimes) and the scope's bucket in
  the scope's region, with a CORS rule;
- Satchel's identity is the emulator's fake dev AccessKey (`[identity] source = "env"`);
- gRPC and metrics listen where the command line says (loopback by default), the
  health-only listener is left out, reflection is on;
- `[cache] url` is left out: a dev run never touches a shared Redis;
- audit lines bound for stdout go to `audit.jsonl` in the data directory instead, so the
  terminal keeps to the banner and the log (the banner names the file).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

from satchel_server.api.server import SatchelServer
from satchel_server.config import (
    ACCESS_KEY_ID_ENV,
    ACCESS_KEY_SECRET_ENV,
    PLAYER_PLACEHOLDER,
    AccessKey,
    MetricsSettings,
    ScopeSettings,
    Settings,
    parse_listen_address,
    read_document,
    settings_from_mapping,
)
from satchel_server.emulator import accounts as dev_account
from satchel_server.emulator.runner import Emulator
from satchel_server.errors import ConfigError

DEV_METRICS_LISTEN = "127.0.0.1:0"
DEV_AUDIT_FILE = "audit.jsonl"


def load(path: Path, environ: Mapping[str, str]) -> Settings:
    """The file's settings, without its shared cache, validated as `satchel serve` would."""
    document = read_document(path)
    cache = document.get("cache")
    if isinstance(cache, dict):
        cache.pop("url", None)
    settings = settings_from_mapping(document, environ, source=f"{path} (on the emulator)")
    if not settings.scopes:
        raise ConfigError("scopes", "at least one [scopes.NAME] table is required to run")
    return settings


def role_arn_in_dev_account(arn: str) -> str:
    """The same role name in the emulator's dev account (config checked the ARN's form)."""
    return f"acs:ram::{dev_account.DEV_ACCOUNT_ID}:role/{arn.rsplit('/', 1)[1]}"


def _one_value(scopes: list[ScopeSettings], what: str, value_of: str) -> str:
    values: set[str] = {getattr(scope, value_of) for scope in scopes}
    if len(values) > 1:
        names = ", ".join(f"scopes.{scope.name}" for scope in scopes)
        raise ConfigError(
            f"scopes.{scopes[0].name}.{value_of}",
            f"{names} share {what} but not its {value_of}: the emulator can hold only one",
        )
    return values.pop()


def emulator_accounts(settings: Settings) -> dict[str, object]:
    """The dev account holding a role per role name and a bucket per bucket of `settings`."""
    by_role: dict[str, list[ScopeSettings]] = {}
    by_bucket: dict[str, list[ScopeSettings]] = {}
    for scope in settings.scopes.values():
        by_role.setdefault(role_arn_in_dev_account(scope.role_arn), []).append(scope)
        by_bucket.setdefault(scope.bucket, []).append(scope)
    roles: list[dict[str, object]] = []
    for arn, scopes in by_role.items():
        buckets = sorted({scope.bucket for scope in scopes})
        policy = {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "oss:*",
                    "Resource": [f"acs:oss:*:*:{b}{rest}" for b in buckets for rest in ("", "/*")],
                }
            ],
        }
        role: dict[str, object] = {
            "name": arn.rsplit("/", 1)[1],
            "trusted_users": [dev_account.DEV_USER],
            "max_session_duration": max(
                3600, *(max(s.ttl_max_seconds, s.signer_ttl_seconds) for s in scopes)
            ),
            "policies": [json.dumps(policy)],
        }
        external_id = _one_value(scopes, f"role {arn}", "external_id")
        if external_id:
            role["external_id"] = external_id
        roles.append(role)
    bucket_entries = [
        {
            "name": name,
            "region": _one_value(scopes, f"bucket {name}", "region"),
            "cors": [dev_account.DEV_CORS_RULE],
        }
        for name, scopes in by_bucket.items()
    ]
    account = {
        "id": dev_account.DEV_ACCOUNT_ID,
        "users": [dev_account.DEV_USER_ENTRY],
        "roles": roles,
        "buckets": bucket_entries,
    }
    return {"accounts": [account]}


def on_emulator(
    settings: Settings, emulator: Emulator, *, listen: str, metrics_listen: str, audit_file: Path
) -> Settings:
    """`settings` pointed at the running emulator, listening where the command line says;
    audit lines bound for stdout go to `audit_file`."""
    scopes = {
        name: dataclasses.replace(
            scope,
            endpoint=emulator.oss_url,
            addressing="path",
            role_arn=role_arn_in_dev_account(scope.role_arn),
        )
        for name, scope in settings.scopes.items()
    }
    server = dataclasses.replace(settings.server, listen=listen, health_listen="", reflection=True)
    audit = settings.audit
    if audit.output == "stdout":
        audit = dataclasses.replace(audit, output=str(audit_file))
    return dataclasses.replace(
        settings,
        audit=audit,
        server=server,
        sts=dataclasses.replace(settings.sts, endpoint=emulator.sts_url),
        scopes=scopes,
        metrics=MetricsSettings(listen=metrics_listen),
        cache=dataclasses.replace(settings.cache, url=""),
        # The emulator's key, never the chain: dev must not probe a metadata service.
        identity=dataclasses.replace(settings.identity, source="env"),
        access_key=AccessKey(dev_account.DEV_ACCESS_KEY_ID, dev_account.DEV_ACCESS_KEY_SECRET),
    )


def banner(settings: Settings, emulator: Emulator, server: SatchelServer) -> str:
    """What `satchel dev` prints once it serves: where everything is, and a first call."""
    if settings.callers:
        who = f"callers {', '.join(settings.callers)} must authenticate (bearer key or mTLS)"
    else:
        who = "open to anyone on loopback, no caller authentication"
    lines = [
        "",
        f"Satchel dev is running ({settings.source}): {who}.",
        f"  gRPC          {server.address}   (reflection on)",
    ]
    if server.metrics_port:
        host, _ = parse_listen_address(settings.metrics.listen)
        lines.append(f"  metrics       http://{host}:{server.metrics_port}/metrics")
    lines += [
        f"  audit log     {settings.audit.output}   (one JSON line per call)",
        f"  STS emulator  {emulator.sts_url}",
        f"  OSS emulator  {emulator.oss_url}   (path-style)",
    ]
    for scope in settings.scopes.values():
        default = "  (default)" if scope.default else ""
        lines.append(
            f"  scope {scope.name}: bucket {scope.bucket}, region {scope.region}, players under "
            f"{scope.prefix_template.replace(PLAYER_PLACEHOLDER, '<id>')}{default}"
        )
    lines += [
        "Try:",
        ("  SATCHEL_API_KEY=<key> " if settings.callers else "  ")
        + f"satchel issue --target {server.address} --player p1 --permissions read",
        "",
    ]
    return "\n".join(lines)


def serve_instructions(emulator: Emulator, accounts_file: Path | None) -> str:
    """What `satchel emulator` prints: how to point `satchel serve` at it."""
    sts = f'[sts]\nendpoint = "{emulator.sts_url}"\n\n'
    oss = f'endpoint = "{emulator.oss_url}"\naddressing = "path"\n'
    if accounts_file is not None:
        return (
            f"Satchel's emulator is running with the accounts in {accounts_file}.\n"
            f"Point `satchel serve` at it: a user's AccessKey from that file in "
            f"{ACCESS_KEY_ID_ENV} and {ACCESS_KEY_SECRET_ENV}, and in its configuration\n\n"
            f"{sts}[scopes.NAME]\n# bucket, region, role_arn: from that file\n{oss}"
        )
    return (
        "Satchel's emulator is running. Its AccessKey is fake: it works here and nowhere else.\n"
        "Point `satchel serve` at it:\n\n"
        f"export {ACCESS_KEY_ID_ENV}={dev_account.DEV_ACCESS_KEY_ID}\n"
        f"export {ACCESS_KEY_SECRET_ENV}={dev_account.DEV_ACCESS_KEY_SECRET}\n\n"
        f"# satchel.toml\n{sts}[scopes.dev]\n"
        f'bucket = "{dev_account.DEV_BUCKET}"\n'
        f'region = "{dev_account.DEV_REGION}"\n'
        f'role_arn = "{dev_account.DEV_ROLE_ARN}"\n'
        f"{oss}\n"
        "# then: satchel serve --config satchel.toml\n"
    )
