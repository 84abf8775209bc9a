"""Redis for the fleet tests: one server per test session, emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.redis_server import RedisMissing, RedisServer


def start_redis(workdir: Path, **options: Any) -> RedisServer:
    try:
        return RedisServer(workdir, **options)
    except RedisMissing as missing:
        pytest.fail(str(missing), pytrace=False)  # never a silent skip


@pytest.fixture(scope="session")
def redis_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(redis_session: RedisServer) -> RedisServer:
    redis_session.client().flushall()
    return redis_session


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own, for tests that stop and restart it."""
    server = start_redis(tmp_path)
    try:
        yield server
    finally:
        server.stop()
