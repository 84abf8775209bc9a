"""Load from separate client processes over loopback, bounded in calls and in time.

Each client process opens one grpc.aio channel and runs `concurrency` callers that send
pre-serialised request bytes and keep the answer as bytes: no (de)serialisation on the
client side, so clients cost the same whatever gRPC server they call.

An HTTP load (`protocol="http"`) calls a JSON endpoint that answers as the mobile OSS SDKs
expect (`StatusCode`, plus `ErrorCode` on failure): each payload is a query string, and a
call's status is "OK", the relayed `ErrorCode`, or DEADLINE_EXCEEDED when the deadline
passes, so both protocols' failures are counted by the same names.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import grpc

from bench.common import median, percentile

# Processes start together at a wall-clock moment this far ahead of the submit.
START_SKEW_S = 0.15
CONNECT_TIMEOUT_S = 10.0
# Beyond its own bounds, how long a client process may take before the bench gives up.
RESULT_SLACK_S = 30.0


@dataclass(frozen=True, slots=True)
class LoadSpec:
    target: str
    method: str
    # Taken in turn by the callers (round-robin when max_calls exceeds them).
    payloads: tuple[bytes, ...]
    concurrency: int
    max_calls: int
    max_seconds: float
    timeout_s: float
    # Calls started during the warm-up count towards max_calls but not in the results.
    warmup_s: float = 0.0
    start_at: float = 0.0
    # grpc: `target` is host:port, `method` the RPC's path. http: `target` is the base URL,
    # `method` the path, each payload a query string.
    protocol: Literal["grpc", "http"] = "grpc"


@dataclass(slots=True)
class LoadResult:
    completed: int = 0  # every call that finished, warm-up included
    window_s: float = 0.0  # from the end of warm-up to the last measured answer
    statuses: Counter[str] = field(default_factory=Counter)  # measured calls
    latencies_ok: list[float] = field(default_factory=list)  # seconds
    latencies_failed: list[float] = field(default_factory=list)

    @property
    def measured(self) -> int:
        return sum(self.statuses.values())

    @property
    def throughput(self) -> float:
        return self.measured / self.window_s if self.window_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        ok, failed = self.latencies_ok, self.latencies_failed
        return {
            "calls": self.measured,
            "rps": self.throughput,
            "statuses": dict(self.statuses),
            "ok_p50_ms": percentile(ok, 0.50) * 1000,
            "ok_p99_ms": percentile(ok, 0.99) * 1000,
            "ok_max_ms": max(ok, default=0.0) * 1000,
            "failed_p50_ms": percentile(failed, 0.50) * 1000,
            "failed_p99_ms": percentile(failed, 0.99) * 1000,
            "failed_max_ms": max(failed, default=0.0) * 1000,
            "window_s": self.window_s,
        }


# One call: payload in, status name out ("OK" or why it failed).
Call = Callable[[bytes], Awaitable[str]]


@asynccontextmanager
async def _grpc_calls(spec: LoadSpec) -> AsyncIterator[Call]:
    async with grpc.aio.insecure_channel(spec.target) as channel:
        # No (de)serialisers: bytes in, bytes out.
        method: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(spec.method)
        await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT_S)

        async def call(payload: bytes) -> str:
            try:
                await method(payload, timeout=spec.timeout_s)
            except grpc.aio.AioRpcError as error:
                return error.code().name
            return "OK"

        yield call


@asynccontextmanager
async def _http_calls(spec: LoadSpec) -> AsyncIterator[Call]:
    connector = aiohttp.TCPConnector(limit=spec.concurrency)
    timeout = aiohttp.ClientTimeout(total=spec.timeout_s)
    async with aiohttp.ClientSession(spec.target, connector=connector, timeout=timeout) as session:

        async def call(payload: bytes) -> str:
            try:
                async with session.get(f"{spec.method}?{payload.decode()}") as response:
                    body = await response.json()
            except TimeoutError:
                return "DEADLINE_EXCEEDED"
            except aiohttp.ClientError as error:  # refused, reset, or not the JSON promised
                return type(error).__name__
            if body.get("StatusCode") == 200:
                return "OK"
            return str(body.get("ErrorCode") or f"HTTP_{response.status}")

        yield call


async def _load(spec: LoadSpec) -> LoadResult:
    result = LoadResult()
    calls = _http_calls(spec) if spec.protocol == "http" else _grpc_calls(spec)
    async with calls as call:
        await asyncio.sleep(max(0.0, spec.start_at - time.time()))
        start = time.perf_counter()
        measure_from = start + spec.warmup_s
        stop_at = measure_from + spec.max_seconds
        issued = 0
        last_end = measure_from

        async def caller() -> None:
            nonlocal issued, last_end
            while issued < spec.max_calls and (began := time.perf_counter()) < stop_at:
                payload = spec.payloads[issued % len(spec.payloads)]
                issued += 1
                status = await call(payload)
                ended = time.perf_counter()
                result.completed += 1
                if began < measure_from:
                    continue
                result.statuses[status] += 1
                latencies = result.latencies_ok if status == "OK" else result.latencies_failed
                latencies.append(ended - began)
                last_end = max(last_end, ended)

        await asyncio.gather(*(caller() for _ in range(spec.concurrency)))
        result.window_s = last_end - measure_from
    return result


def run_load(spec: LoadSpec) -> LoadResult:
    """Entry point in a client process."""
    return asyncio.run(_load(spec))


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


class LoadPool:
    """`processes` client processes, started once and reused for every load; close() ends them."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        # spawn, not fork: grpc's threads do not survive a fork.
        self._pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
        # Start every worker now, so the first measured load does not pay for it.
        for done in [self._pool.submit(_pause, 0.2) for _ in range(processes)]:
            done.result(timeout=60)

    def run(self, spec: LoadSpec) -> LoadResult:
        """Split the calls and payloads across the processes, start them together, merge."""
        start_at = time.time() + START_SKEW_S
        parts = []
        for index in range(self.processes):
            payloads = spec.payloads[index :: self.processes] or spec.payloads
            share = _share(spec.max_calls, self.processes, index)
            if share == 0:
                continue
            parts.append(
                dataclasses.replace(spec, payloads=payloads, max_calls=share, start_at=start_at)
            )
        limit = START_SKEW_S + spec.warmup_s + spec.max_seconds + spec.timeout_s + RESULT_SLACK_S
        results = [
            future.result(timeout=limit)
            for future in [self._pool.submit(run_load, part) for part in parts]
        ]
        merged = LoadResult()
        for part_result in results:
            merged.completed += part_result.completed
            merged.window_s = max(merged.window_s, part_result.window_s)
            merged.statuses.update(part_result.statuses)
            merged.latencies_ok.extend(part_result.latencies_ok)
            merged.latencies_failed.extend(part_result.latencies_failed)
        return merged

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def median_of(summaries: list[dict[str, Any]], name: str) -> float:
    return median([summary[name] for summary in summaries])
