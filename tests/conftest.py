"""Fixtures shared by every test directory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import grpc
import pytest
import pytest_asyncio
from support.processes import ServerProcess

from satchel_server.api.server import SatchelServer, build_server
from satchel_server.config import ServerSettings


@pytest_asyncio.fixture
async def server() -> AsyncIterator[SatchelServer]:
    """The real server, in-process, on a free loopback port, with reflection on."""
    built = build_server(ServerSettings(listen="127.0.0.1:0", reflection=True, grace_seconds=1))
    await built.start()
    try:
        yield built
    finally:
        await built.server.stop(None)


@pytest_asyncio.fixture
async def channel(server: SatchelServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as chan:
        yield chan


@pytest.fixture(autouse=True)
def _no_cloud_metadata_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """The credential chain never asks the cloud's metadata address from a test.

    Tests of the ECS source point it at the emulator through settings, not os.environ.
    """
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")


Spawn = Callable[..., ServerProcess]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """`spawn(*python_args, env=...)` starts a child; any still running at the end is killed."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None, stdout: bool = False) -> ServerProcess:
        proc = ServerProcess(args, env, stdout=stdout)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
