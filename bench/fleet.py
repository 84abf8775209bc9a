"""Fleet: AssumeRole calls for N requests over P players across R replicas, Redis or not.

R complete Satchel stacks (each its own broker, signers, STS client and Redis client)
share one emulator, in this process. The same shuffled workload runs twice: replicas
alone (each caches and budgets by itself), then sharing one real redis-server
(`[cache] url`). The emulator counts every AssumeRole request. Target (issue 12):
shared, exactly one AssumeRole per player (and one presigning credential per scope for
the whole fleet); alone, up to one per player per replica.

`run(quick)` returns the figures; `rows` and `describe` render them like the others.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from bench.common import Row
from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from satchel_server.config import AuditSettings, CacheSecrets, Settings
from satchel_server.emulator.runner import Emulator, start_emulator
from satchel_server.emulator.state import EmulatorConfig
from satchel_server.wiring import dev_settings, wired_server

# The redis-server launcher the tests use (tests/support is not an installed package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.redis_server import RedisServer


@dataclass(frozen=True, slots=True)
class FleetConfig:
    requests: int = 3_000
    players: int = 300
    replicas: int = 4
    concurrency: int = 128
    deadline_s: float = 20.0
    seed: int = 12


QUICK = FleetConfig(requests=300, players=30, replicas=3, concurrency=64)


async def _workload(emulator: Emulator, settings: Settings, config: FleetConfig) -> dict[str, Any]:
    rng = random.Random(config.seed)
    per_player = config.requests // config.players
    players = [f"fleet-{p:05d}" for p in range(config.players) for _ in range(per_player)]
    rng.shuffle(players)
    before_start = emulator.counters.assume_role_calls
    async with AsyncExitStack() as stack:
        stubs = []
        for _ in range(config.replicas):
            server = await stack.enter_async_context(wired_server(settings))
            await server.start()
            stack.push_async_callback(server.server.stop, None)
            channel = await stack.enter_async_context(grpc.aio.insecure_channel(server.address))
            stubs.append(pb_grpc.TokenServiceStub(channel))
        before = emulator.counters.assume_role_calls
        issued_before = emulator.counters.assume_role_issued
        statuses: collections.Counter[str] = collections.Counter()
        gate = asyncio.Semaphore(config.concurrency)

        async def one(i: int, player: str) -> None:
            request = pb.IssueTokenRequest(player_id=player, permissions=[pb.PERMISSION_READ])
            async with gate:
                try:
                    await stubs[i % config.replicas].IssueToken(request, timeout=config.deadline_s)
                    statuses["OK"] += 1
                except grpc.aio.AioRpcError as error:
                    statuses[error.code().name] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(i, player) for i, player in enumerate(players)))
        wall = time.perf_counter() - started
    return {
        "startup_assume_role_calls": before - before_start,
        "assume_role_calls": emulator.counters.assume_role_calls - before,
        "assume_role_issued": emulator.counters.assume_role_issued - issued_before,
        "statuses": dict(statuses),
        "wall_s": wall,
    }


async def _run(config: FleetConfig) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="satchel-bench-fleet-") as tmp:
        redis = RedisServer(Path(tmp))
        try:
            # Each run gets an emulator (an STS account) of its own: the first run ends
            # throttled, and its calls must not count against the second's quota.
            async with _emulator(Path(tmp) / "alone") as emulator:
                alone = await _workload(emulator, _base_settings(emulator), config)
            async with _emulator(Path(tmp) / "shared") as emulator:
                base = _base_settings(emulator)
                shared_settings = dataclasses.replace(
                    base,
                    # In-process replicas share one event loop: a generous Redis timeout, so
                    # a busy loop is not mistaken for a slow Redis.
                    cache=dataclasses.replace(base.cache, url=redis.url, redis_timeout_seconds=1.0),
                    cache_secrets=CacheSecrets((("bench", os.urandom(32)),)),
                )
                shared = await _workload(emulator, shared_settings, config)
            shared["redis_keys"] = len(redis.dump())
        finally:
            redis.stop()
    return {"config": dataclasses.asdict(config), "alone": alone, "shared": shared}


@asynccontextmanager
async def _emulator(data_dir: Path) -> AsyncIterator[Emulator]:
    emulator = await start_emulator(EmulatorConfig(data_dir=data_dir))
    try:
        yield emulator
    finally:
        await emulator.stop()


def _base_settings(emulator: Emulator) -> Settings:
    base = dev_settings("127.0.0.1:0", emulator)
    return dataclasses.replace(base, audit=AuditSettings(output=os.devnull))


def run(quick: bool = False) -> dict[str, Any]:
    return asyncio.run(_run(QUICK if quick else FleetConfig()))


def rows(result: dict[str, Any]) -> list[Row]:
    config, alone, shared = result["config"], result["alone"], result["shared"]
    players, replicas = config["players"], config["replicas"]
    return [
        Row(
            f"Fleet: AssumeRole for {config['requests']:,} requests over {players:,} players "
            f"across {replicas} replicas",
            f"{shared['assume_role_issued']:,} credentials minted with a shared cache "
            f"(Redis) in {shared['assume_role_calls']:,} calls"
            f"{_throttled(shared)}; {shared['startup_assume_role_calls']} at start-up",
            f"{alone['assume_role_calls']:,} calls without; "
            f"{alone['startup_assume_role_calls']} at start-up",
            f"{alone['assume_role_calls'] / max(1, shared['assume_role_calls']):.1f}x fewer",
            f"shared: one credential per player ({players:,}), one per scope at start-up",
            shared["assume_role_issued"] == players and shared["startup_assume_role_calls"] == 1,
            "12",
        )
    ]


def _throttled(run: dict[str, Any]) -> str:
    refused = run["assume_role_calls"] - run["assume_role_issued"]
    return f", {refused} of them throttled and retried" if refused else ""


def describe(result: dict[str, Any]) -> list[str]:
    config, alone, shared = result["config"], result["alone"], result["shared"]
    return [
        f"Fleet: {config['requests']:,} IssueToken requests over {config['players']:,} "
        f"players, shuffled and spread round-robin over {config['replicas']} in-process "
        f"replicas (each a complete stack), {config['concurrency']} at a time. Alone: "
        f"{alone['wall_s']:.2f} s, statuses {alone['statuses']}. Shared: "
        f"{shared['wall_s']:.2f} s, statuses {shared['statuses']}, "
        f"{shared['redis_keys']} keys in Redis afterwards (names are keyed hashes, values "
        "AES-GCM sealed). A call STS throttles mints nothing: the fleet budget admits 99"
        " calls a second, but the emulator shares the replicas' event loop, so calls"
        " admitted over a little more than a second can reach it within one."
    ]


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
