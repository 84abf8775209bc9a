"""Start and stop the emulator's listeners (STS, OSS, identity, optional admin) in the loop.

In a test::

    async with running_emulator(EmulatorConfig(data_dir=tmp_path)) as emu:
        emu.sts_url, emu.oss_url          # http://127.0.0.1:<port>
        emu.metadata_url, emu.credentials_uri   # Satchel's own identity, as ECS and a URI give it
        emu.faults.set("sts", FaultPlan(status=503, count=1))
        emu.counters.assume_role_calls

From a CLI: ``await serve(config, on_ready=print_urls)`` runs until cancelled (SIGINT/SIGTERM
cancel the task); or ``emu = await start_emulator(config)`` … ``await emu.stop()``.
Access logs are off: request lines carry presigned signatures and security tokens.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from satchel_server.emulator.accounts import Directory, directory_from_mapping, load_directory
from satchel_server.emulator.admin_app import build_admin_app, check_loopback
from satchel_server.emulator.faults import Faults
from satchel_server.emulator.identity_app import URI_PATH, build_identity_app
from satchel_server.emulator.limits import RateLimiter
from satchel_server.emulator.oss_app import build_oss_app
from satchel_server.emulator.state import Clock, Counters, EmulatorConfig, EmulatorState
from satchel_server.emulator.store import ObjectStore
from satchel_server.emulator.sts_app import build_sts_app

_SHUTDOWN_TIMEOUT_S = 2.0


@dataclass
class Emulator:
    state: EmulatorState
    sts_url: str = ""
    oss_url: str = ""
    identity_url: str = ""
    admin_url: str | None = None
    _runners: list[web.AppRunner] = field(default_factory=list, repr=False)

    @property
    def faults(self) -> Faults:
        return self.state.faults

    @property
    def counters(self) -> Counters:
        return self.state.counters

    @property
    def directory(self) -> Directory:
        return self.state.directory

    @property
    def metadata_url(self) -> str:
        """Where an SDK finds the ECS metadata service (100.100.100.200 in the cloud)."""
        return self.identity_url

    @property
    def credentials_uri(self) -> str:
        return f"{self.identity_url}{URI_PATH}"

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in reversed(runners):
            await runner.cleanup()


async def _serve(
    app: web.Application, host: str, port: int, tls: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=tls)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
    except BaseException:
        await runner.cleanup()
        raise
    return runner, f"{'https' if tls else 'http'}://{bound_host}:{bound_port}"


def _tls(files: tuple[Path, Path] | None) -> ssl.SSLContext | None:
    if files is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*files)
    return context


def build_state(config: EmulatorConfig, clock: Clock = time.time) -> EmulatorState:
    return EmulatorState(
        config=config,
        directory=directory_from_mapping(config.accounts)
        if config.accounts is not None
        else load_directory(config.accounts_file),
        store=ObjectStore(config.data_dir),
        clock=clock,
        faults=Faults(config.fault_seed),
        rate_limiter=RateLimiter(config.assume_role_rate_per_s),
    )


async def start_emulator(config: EmulatorConfig, clock: Clock = time.time) -> Emulator:
    """Bind STS and OSS (and admin, if configured) and return their URLs."""
    if config.admin_port is not None:
        check_loopback(config.host)
    emulator = Emulator(build_state(config, clock))
    try:
        runner, emulator.sts_url = await _serve(
            build_sts_app(emulator.state), config.host, config.sts_port, _tls(config.sts_tls)
        )
        emulator._runners.append(runner)
        runner, emulator.identity_url = await _serve(
            build_identity_app(emulator.state), config.host, config.identity_port
        )
        emulator._runners.append(runner)
        runner, emulator.oss_url = await _serve(
            build_oss_app(emulator.state), config.host, config.oss_port
        )
        emulator._runners.append(runner)
        if config.admin_port is not None:
            runner, emulator.admin_url = await _serve(
                build_admin_app(emulator.state), config.host, config.admin_port
            )
            emulator._runners.append(runner)
    except BaseException:
        await emulator.stop()
        raise
    return emulator


@asynccontextmanager
async def running_emulator(
    config: EmulatorConfig, clock: Clock = time.time
) -> AsyncIterator[Emulator]:
    emulator = await start_emulator(config, clock)
    try:
        yield emulator
    finally:
        await emulator.stop()


async def serve(
    config: EmulatorConfig,
    clock: Clock = time.time,
    on_ready: Callable[[Emulator], None] | None = None,
) -> None:
    """Run the emulator until this task is cancelled; `on_ready` gets the bound URLs."""
    async with running_emulator(config, clock) as emulator:
        if on_ready is not None:
            on_ready(emulator)
        await asyncio.Event().wait()
