"""Builds the running server from settings: the one place that wires concrete parts.

`serve` and `dev` both come here; tests and the bench use the same functions, so
what they run is what production runs.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

from aiohttp import ClientSession
from prometheus_client import start_http_server

from satchel_server.access.admission import Admission
from satchel_server.access.audit import audit_log_from
from satchel_server.access.callers import Authenticator
from satchel_server.api.pipeline import CallPipeline
from satchel_server.api.server import ListenError, SatchelServer, build_server, server_credentials
from satchel_server.api.servicer import TokenService
from satchel_server.config import (
    ACCESS_KEY_ID_ENV,
    ACCESS_KEY_SECRET_ENV,
    AccessKey,
    Settings,
    parse_listen_address,
    settings_from_mapping,
)
from satchel_server.credentials.broker import CredentialBroker
from satchel_server.credentials.identity import IdentityError, RefreshingIdentity
from satchel_server.credentials.types import Clock, utc_now
from satchel_server.emulator import accounts as dev_account
from satchel_server.emulator.runner import Emulator
from satchel_server.errors import ConfigError
from satchel_server.fleet.assembly import open_fleet
from satchel_server.observability.metrics import (
    Metrics,
    QuotaCollector,
    StateCollector,
    new_metrics,
)
from satchel_server.presigning.presigner import Presigner
from satchel_server.presigning.quota import FolderQuotas
from satchel_server.presigning.signing_credentials import ScopeRefresher, ScopeSigningCredentials
from satchel_server.storage.listing import OssFolderLister
from satchel_server.sts.client import AliyunStsClient
from satchel_server.sts.http import new_session
from satchel_server.sts.identity_sources import identity_source

log = logging.getLogger("satchel")


@asynccontextmanager
async def wired_token_service(
    settings: Settings, metrics: Metrics | None = None, pipeline: CallPipeline | None = None
) -> AsyncIterator[TokenService]:
    """The real TokenService: one aiohttp session, the STS client, budget, broker, signers.

    `pipeline`: what every call goes through (default: no callers, no audit lines).
    """
    async with new_session() as session:
        identity = await resolve_identity(settings, session)
        access_key = own_access_key(settings, identity)
        # The shared cache and budget (Redis), or this process's own when none is set.
        fleet = open_fleet(settings)
        observe = metrics.observe_sts if metrics is not None else None
        sts = AliyunStsClient(
            session, settings.sts, identity, observe=observe, retry_budget=fleet.budget
        )
        broker = CredentialBroker(
            sts,
            settings.cache,
            fleet.budget,
            shared=fleet.shared,
            session_name_key=settings.session_name_key,
        )
        scope_signers = {
            name: ScopeRefresher(scope, sts, fleet.budget, access_key, shared=fleet.shared)
            for name, scope in settings.scopes.items()
        }
        signers = ScopeSigningCredentials(scope_signers)
        quotas = FolderQuotas(
            settings.scopes, signers, OssFolderLister(session), pending=fleet.pending_uploads
        )
        if metrics is not None:
            metrics.registry.register(StateCollector(broker, fleet.budget, scope_signers))
            metrics.registry.register(QuotaCollector(quotas.stats))
        # Presigning credentials first, so the first PresignObject does not wait on STS.
        await signers.start()
        try:
            yield TokenService(
                settings.scopes,
                broker,
                Presigner(settings.scopes, signers),
                admission=Admission.from_settings(settings),
                pipeline=pipeline,
                max_deadline_seconds=settings.server.max_deadline_seconds,
                quotas=quotas,
            )
        finally:
            await signers.stop()
            await broker.close()
            await fleet.close()


async def resolve_identity(
    settings: Settings, session: ClientSession, clock: Clock = utc_now
) -> RefreshingIdentity:
    """Satchel's own credentials, from `[identity] source`; ConfigError when none yields."""
    identity = RefreshingIdentity(identity_source(settings, session, clock), clock)
    try:
        await identity.start()
    except IdentityError as error:
        raise ConfigError(
            "identity.source",
            f"{settings.identity.source}: {error}. Satchel needs its own credentials to call "
            "STS: see docs/operations.md, Identity",
        ) from None
    return identity


def own_access_key(settings: Settings, identity: RefreshingIdentity) -> AccessKey | None:
    """The long-lived key scopes with sign_with_access_key sign with; ConfigError if none."""
    key = identity.long_lived
    for scope in settings.scopes.values():
        if scope.sign_with_access_key and key is None:
            raise ConfigError(
                f"scopes.{scope.name}.sign_with_access_key",
                f"needs a RAM user's long-lived AccessKey, but Satchel's identity comes from "
                f"{identity.source_name} with temporary credentials",
            )
    return None if key is None else AccessKey(key.access_key_id, key.access_key_secret)


@asynccontextmanager
async def wired_server(settings: Settings) -> AsyncIterator[SatchelServer]:
    """The server `serve` and `dev` run: the call pipeline (callers, audit, metrics), TLS."""
    credentials = server_credentials(settings.tls)
    if settings.callers and credentials is None:
        log.warning("bearer keys travel in plaintext: serve TLS unless a proxy terminates it")
    metrics = new_metrics()
    audit = audit_log_from(settings.audit)
    try:
        with serving_metrics(settings.metrics.listen, metrics) as metrics_port:
            pipeline = CallPipeline(Authenticator(settings.callers), audit, metrics.rpc)
            async with wired_token_service(settings, metrics, pipeline) as token_service:
                server = build_server(
                    settings.server,
                    token_service,
                    credentials=credentials,
                    ready=token_service.ready,
                )
                server.metrics_port = metrics_port
                yield server
    finally:
        audit.close()


@contextmanager
def serving_metrics(listen: str, metrics: Metrics) -> Iterator[int]:
    """Prometheus's own HTTP server (a thread) at /metrics, when an address is configured.

    Yields the bound port (0: not serving).
    """
    if not listen:
        yield 0
        return
    host, port = parse_listen_address(listen)
    try:
        server, thread = start_http_server(port, host.strip("[]"), metrics.registry)
    except OSError as exc:
        raise ListenError(f"cannot listen on {listen} (metrics): {exc}") from None
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def serve(settings: Settings, banner: Callable[[SatchelServer], str] | None = None) -> None:
    async with wired_server(settings) as server:
        if banner is not None:
            server.on_started = lambda: print(banner(server), flush=True)
        # Everything built so far lives as long as the process: freezing it keeps the
        # cyclic garbage collector from rescanning it on every collection under load.
        gc.collect()
        gc.freeze()
        await server.serve_until_signalled()


def dev_settings(listen: str, emulator: Emulator, audit_output: str = "stdout") -> Settings:
    """Settings that point Satchel at a running emulator and its built-in dev account.

    `audit_output` is `[audit] output`: "stdout" or a file appended to.
    """
    document = {
        "server": {"listen": listen, "reflection": True},
        # The dev key below, never the chain: dev must not probe a metadata service.
        "identity": {"source": "env"},
        "audit": {"output": audit_output},
        "sts": {"endpoint": emulator.sts_url},
        # Dev is for trying things out on loopback: no per-player limit to trip over.
        "limits": {"player_rate_per_second": 0},
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
