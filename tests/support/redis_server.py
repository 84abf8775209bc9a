"""A real redis-server on loopback for the fleet tests and bench/fleet.py (no mock Redis).

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

INSTALL_HINT = (
    "redis-server is not on PATH: the fleet tests need a real Redis. "
    "Install it (Debian/Ubuntu: apt-get install -y redis-server); .ci/run does."
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisMissing(RuntimeError):
    """redis-server is not installed."""


class RedisServer:
    """One redis-server process with no persistence; stop() and start() keep its port.

    With `tls_ca`, `tls_cert` and `tls_key` (PEM files) it speaks only TLS; with
    `password` it requires AUTH.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        tls: tuple[Path, Path, Path] | None = None,
        password: str = "",
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisMissing(INSTALL_HINT)
        self._binary = binary
        self._workdir = workdir
        self._tls = tls
        self._password = password
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
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

    def _listen_options(self) -> list[str]:
        options = ["--requirepass", self._password] if self._password else []
        if self._tls is None:
            return [*options, "--port", str(self.port)]
        ca, cert, key = self._tls
        return [
            *options,
            "--port",
            "0",
            "--tls-port",
            str(self.port),
            "--tls-ca-cert-file",
            str(ca),
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
            "--tls-auth-clients",
            "no",
        ]

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                self._binary,
                *self._listen_options(),
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
