"""Servers under load, each in its own process: Satchel (wired as `satchel dev` is), echo,
or the baseline STS app server (bench/sts_app_server.py) pointed at Satchel's emulator.

The parent talks to the child over a pipe: the child answers "stats" with its CPU time and
the emulator's STS counters, and "stop" ends it. Keeping the server out of the benchmark's
own process means the only other work on the machine is the load clients'.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from bench import echo, sts_app_server
from satchel_server.api.server import build_server
from satchel_server.config import ServerSettings
from satchel_server.emulator import accounts
from satchel_server.emulator.runner import start_emulator
from satchel_server.emulator.state import Counters, EmulatorConfig
from satchel_server.wiring import dev_settings, wired_server

START_TIMEOUT_S = 60.0
STATS_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class ServerSpec:
    kind: Literal["satchel", "echo", "sts_app_server"]
    # echo only: method name -> response size in bytes.
    echo_sizes: Mapping[str, int] = field(default_factory=dict)
    # satchel only: the emulator's AssumeRole limit per account (STS's is 100/s).
    sts_rate_per_s: int = 100
    # sts_app_server only: the emulator it calls (a Satchel process's `emulator_urls`).
    emulator_urls: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class _Running:
    address: str
    stop: Callable[[], Awaitable[None]]
    counters: Counters | None = None  # the emulator's, where this process runs one
    emulator_urls: tuple[str, str] | None = None  # (STS, OSS) base URLs


class _CountingHandler(logging.Handler):
    """Counts what the server would have logged, instead of flooding the bench output."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def _start(spec: ServerSpec, stack: AsyncExitStack) -> _Running:
    if spec.kind == "echo":
        # The same factory, options and side services as Satchel's server, but bare: no
        # call pipeline, and a handler that does nothing. reflection=True as in `satchel dev`.
        server = build_server(ServerSettings(listen="127.0.0.1:0", reflection=True))
        server.server.add_generic_rpc_handlers((echo.handler(spec.echo_sizes),))
        await server.start()
        return _Running(server.address, lambda: server.server.stop(None))
    if spec.kind == "sts_app_server":
        return await _start_sts_app_server(spec)
    data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="satchel-bench-"))
    emulator = await start_emulator(
        EmulatorConfig(data_dir=Path(data_dir), assume_role_rate_per_s=spec.sts_rate_per_s)
    )
    stack.push_async_callback(emulator.stop)
    # Audit lines (one per call) go to a file, as `output = PATH` configures: still written,
    # so still paid for, but not into the bench's own output.
    settings = dev_settings(
        "127.0.0.1:0", emulator, audit_output=str(Path(data_dir) / "audit.jsonl")
    )
    # The server `satchel dev` runs: its call pipeline (callers, audit, metrics) included.
    server = await stack.enter_async_context(wired_server(settings))
    await server.start()
    # As `satchel serve` and `satchel dev` do once everything is wired (satchel_server.wiring).
    gc.collect()
    gc.freeze()
    return _Running(
        server.address,
        lambda: server.server.stop(None),
        emulator.counters,
        (emulator.sts_url, emulator.oss_url),
    )


async def _start_sts_app_server(spec: ServerSpec) -> _Running:
    if spec.emulator_urls is None:
        raise ValueError("the STS app server needs a Satchel process's emulator_urls")
    sts_url, oss_url = spec.emulator_urls
    config = sts_app_server.AppServerConfig(
        access_key_id=accounts.DEV_ACCESS_KEY_ID,
        access_key_secret=accounts.DEV_ACCESS_KEY_SECRET,
        role_arn=accounts.DEV_ROLE_ARN,
        region=accounts.DEV_REGION,
        bucket=accounts.DEV_BUCKET,
        sts_host=sts_url.removeprefix("http://"),
        oss_endpoint=oss_url,
    )
    runner = web.AppRunner(sts_app_server.build_app(config), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return _Running(f"http://{host}:{port}", runner.cleanup)


async def _serve(spec: ServerSpec, conn: Connection, logged: _CountingHandler) -> None:
    async with AsyncExitStack() as stack:
        running = await _start(spec, stack)
        stack.push_async_callback(running.stop)
        counters = running.counters
        conn.send((running.address, running.emulator_urls))
        loop = asyncio.get_running_loop()
        # Its own thread: the default executor is the baseline server's, all of it.
        pipe = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="bench-pipe"))
        while True:
            try:
                command = await loop.run_in_executor(pipe, conn.recv)
            except EOFError:  # the parent is gone
                return
            if command == "stop":
                return
            conn.send(
                {
                    # Every thread of the process: grpc's completion-queue threads included.
                    "cpu_s": time.process_time(),
                    "assume_role_calls": None if counters is None else counters.assume_role_calls,
                    "assume_role_issued": None if counters is None else counters.assume_role_issued,
                    "warnings_logged": logged.count,
                }
            )


def _child(spec: ServerSpec, conn: Connection) -> None:
    logged = _CountingHandler()
    logging.basicConfig(level=logging.WARNING, handlers=[logged], force=True)
    asyncio.run(_serve(spec, conn, logged))


class ServerProcess:
    """A server in a spawned child process; `with contextlib.closing(...)` stops it."""

    def __init__(self, spec: ServerSpec) -> None:
        # spawn, not fork: grpc's threads do not survive a fork.
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(target=_child, args=(spec, child_conn), daemon=True)
        self._process.start()
        child_conn.close()
        self.address: str
        # (STS, OSS) base URLs of the emulator a Satchel process runs; None for the others.
        self.emulator_urls: tuple[str, str] | None
        self.address, self.emulator_urls = self._receive(START_TIMEOUT_S)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def _receive(self, timeout: float) -> Any:
        if not self._conn.poll(timeout):
            self.close()
            raise TimeoutError(f"bench server did not answer within {timeout:.0f} s")
        try:
            return self._conn.recv()
        except EOFError:
            self.close()
            raise RuntimeError("bench server exited (its traceback is on stderr)") from None

    def stats(self) -> dict[str, Any]:
        self._conn.send("stats")
        stats: dict[str, Any] = self._receive(STATS_TIMEOUT_S)
        return stats

    def close(self) -> None:
        if self._process.is_alive():
            with suppress(OSError):  # the child may already be gone
                self._conn.send("stop")
            self._process.join(STOP_TIMEOUT_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(STOP_TIMEOUT_S)
        self._conn.close()


def stats_delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """after - before for every numeric stat (None stays None)."""
    return {
        name: None if after[name] is None else after[name] - before[name]
        for name in after
        if name in before
    }
