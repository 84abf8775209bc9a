"""Start-up: from process start to health SERVING, for `satchel dev` as a subprocess.

The clock starts just before the process is spawned. The server binds 127.0.0.1:0 and logs
the address it got; from then on the health service is polled until it answers SERVING.
`satchel dev` also starts the emulator and fetches the presigning credentials (one
AssumeRole) before it serves, so this is the whole cold start. The baseline is an
interpreter that only imports grpc, protobuf and aiohttp: the floor under any such server.
"""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.common import Row, median

REPO_ROOT = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"satchel listening on (\S+:\d+)")
DEADLINE_S = 60.0
POLL_PAUSE_S = 0.005


def _lines(stream: Any, into: queue.Queue[str]) -> None:
    # Drains the pipe to the end, so the child never blocks on a full stderr.
    for line in stream:
        into.put(line)


def _address(lines: queue.Queue[str], deadline: float) -> str:
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if found := LISTENING.search(line):
            return found.group(1)
    raise TimeoutError("satchel dev did not log its address in time")


def _await_serving(address: str, deadline: float) -> None:
    request = health_pb2.HealthCheckRequest()
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                if stub.Check(request, timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(POLL_PAUSE_S)
    raise TimeoutError("satchel dev did not report SERVING in time")


def time_to_serving() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="satchel-bench-") as data_dir:
        deadline = time.monotonic() + DEADLINE_S
        started = time.perf_counter()
        command = [sys.executable, "-m", "satchel_server", "dev", "--listen", "127.0.0.1:0"]
        process = subprocess.Popen(
            [*command, "--data-dir", data_dir],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_lines, args=(process.stderr, lines), daemon=True).start()
        try:
            address = _address(lines, deadline)
            listening = time.perf_counter() - started
            _await_serving(address, deadline)
            serving = time.perf_counter() - started
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)
    return {"listening_s": listening, "serving_s": serving}


def import_floor() -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import grpc, google.protobuf, aiohttp"],
        check=True,
        timeout=DEADLINE_S,
    )
    return time.perf_counter() - started


def run(repeats: int = 3) -> dict[str, Any]:
    serving, floor = [], []
    for _ in range(repeats):  # interleaved, like every other bench here
        serving.append(time_to_serving()["serving_s"])
        floor.append(import_floor())
    return {
        "repeats": repeats,
        "serving_s": median(serving),
        "import_floor_s": median(floor),
        "runs_serving_s": serving,
        "runs_import_floor_s": floor,
    }


def rows(result: dict[str, Any]) -> list[Row]:
    return [
        Row(
            "Start-up: `satchel dev` process start to health SERVING",
            f"{result['serving_s'] * 1000:.0f} ms",
            f"import grpc+protobuf+aiohttp {result['import_floor_s'] * 1000:.0f} ms",
            f"{result['serving_s'] / result['import_floor_s']:.1f}x the floor",
            "none set",
            None,
            "#10",
        )
    ]


def describe(result: dict[str, Any]) -> list[str]:
    runs = ", ".join(f"{value * 1000:.0f}" for value in result["runs_serving_s"])
    return [f"Time to SERVING per run (ms): {runs}; median of {result['repeats']}."]
