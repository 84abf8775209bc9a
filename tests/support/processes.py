"""Run a Satchel server as a real subprocess and learn the port it bound.

Servers in tests bind 127.0.0.1:0; the process logs "listening on HOST:PORT",
which is how the test finds it without racing for a fixed port.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (\S+:\d+)")


class ServerProcess:
    """A child process whose stderr is read line by line on a background thread."""

    def __init__(
        self, args: Sequence[str], env: dict[str, str] | None = None, *, stdout: bool = False
    ) -> None:
        """`stdout`: read what the child prints (a banner, instructions) with its log."""
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if stdout else subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream = self.process.stderr or self.process.stdout
        assert stream is not None
        for line in stream:
            self.output.append(line)
            self.lines.put(line)

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float = 20.0) -> re.Match[str]:
        """Wait for a stderr line matching `pattern`; fail with everything seen so far."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            if match := regex.search(line):
                return match
        raise AssertionError(f"no line matched {regex.pattern!r}; output:\n{''.join(self.output)}")

    def wait_listening(self) -> str:
        return self.wait_for(LISTENING).group(1)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 20.0) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
