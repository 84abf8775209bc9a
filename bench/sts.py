"""STS efficiency: AssumeRole calls for a many-player workload, and a cold storm at the limit.

Satchel runs as `satchel dev` wires it, its emulator enforcing STS's 100 AssumeRole calls
per second per account; every STS request (throttled ones included) is counted there.

1. Workload: N IssueToken requests over P players, shuffled, with high concurrency from
   separate client processes. Target (issue 5): exactly one AssumeRole per cold key.
2. Storm: S players, all cold, all at once, each with a short deadline. Satchel's budget
   (90/s, process-wide) runs out: the report says how many succeed, how many fail with
   which status and how long both waited, and whether STS itself had to throttle.
"""

from __future__ import annotations

import random
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from typing import Any

from bench.common import Row
from bench.load import LoadPool, LoadSpec
from bench.rpc import ISSUE
from bench.servers import ServerProcess, ServerSpec, stats_delta
from satchel.v1 import token_service_pb2 as pb


@dataclass(frozen=True, slots=True)
class StsConfig:
    requests: int = 10_000
    players: int = 1_000
    processes: int = 2
    concurrency: int = 256  # callers per client process
    workload_timeout_s: float = 60.0
    workload_max_s: float = 120.0
    storm_players: int = 1_000
    storm_timeout_s: float = 5.0
    seed: int = 10
    pause_s: float = 1.5


QUICK = StsConfig(
    requests=100, players=10, processes=1, concurrency=16, storm_players=40, pause_s=0.1
)


def _issue(player: str) -> bytes:
    return pb.IssueTokenRequest(
        player_id=player, permissions=[pb.PERMISSION_READ]
    ).SerializeToString()


def _measure(
    pool: LoadPool, server: ServerProcess, spec: LoadSpec
) -> tuple[dict[str, Any], dict[str, Any]]:
    before = server.stats()
    started = time.perf_counter()
    result = pool.run(spec)
    summary = result.summary()
    summary["wall_s"] = time.perf_counter() - started
    return summary, stats_delta(before, server.stats())


def run(config: StsConfig = StsConfig()) -> dict[str, Any]:
    rng = random.Random(config.seed)
    per_player = config.requests // config.players
    workload = [_issue(f"w-{p:05d}") for p in range(config.players) for _ in range(per_player)]
    rng.shuffle(workload)
    storm = [_issue(f"s-{p:05d}") for p in range(config.storm_players)]
    with (
        closing(LoadPool(config.processes)) as pool,
        closing(ServerProcess(ServerSpec("satchel"))) as satchel,
    ):
        work, work_sts = _measure(
            pool,
            satchel,
            LoadSpec(
                satchel.address,
                ISSUE,
                tuple(workload),
                concurrency=config.concurrency,
                max_calls=len(workload),
                max_seconds=config.workload_max_s,
                timeout_s=config.workload_timeout_s,
            ),
        )
        # Let the budget refill and STS's one-second window empty: the storm starts fresh.
        time.sleep(config.pause_s)
        storm_result, storm_sts = _measure(
            pool,
            satchel,
            LoadSpec(
                satchel.address,
                ISSUE,
                tuple(storm),
                # Everyone at once: one caller per player.
                concurrency=-(-config.storm_players // config.processes),
                max_calls=len(storm),
                max_seconds=config.storm_timeout_s * 2,
                timeout_s=config.storm_timeout_s,
            ),
        )
    return {
        "config": asdict(config),
        "workload": {
            "requests": len(workload),
            "players": config.players,
            **work,
            "sts": work_sts,
        },
        "storm": {"players": config.storm_players, **storm_result, "sts": storm_sts},
        "targets_met": {
            "one_call_per_cold_key": work_sts["assume_role_calls"] == config.players,
        },
    }


def rows(result: dict[str, Any]) -> list[Row]:
    work, storm = result["workload"], result["storm"]
    sts, storm_sts = work["sts"], storm["sts"]
    ok = storm["statuses"].get("OK", 0)
    failures = (
        ", ".join(
            f"{name} {count:,}" for name, count in sorted(storm["statuses"].items()) if name != "OK"
        )
        or "none"
    )
    throttled = storm_sts["assume_role_calls"] - storm_sts["assume_role_issued"]
    return [
        Row(
            f"STS: AssumeRole for {work['requests']:,} requests over {work['players']:,} players",
            f"{sts['assume_role_calls']:,} calls ({sts['assume_role_issued']:,} issued); "
            f"{work['requests'] - work['statuses'].get('OK', 0):,} requests failed",
            f"{work['players']:,} cold keys",
            f"{sts['assume_role_calls'] / work['players']:.3f} per cold key",
            "1 per cold key (counted at the emulator)",
            result["targets_met"]["one_call_per_cold_key"],
            "#5",
        ),
        Row(
            f"STS: cold storm, {storm['players']:,} players at once, "
            f"{result['config']['storm_timeout_s']:.0f} s deadline",
            f"{ok:,} OK (p99 {storm['ok_p99_ms']:,.0f} ms); failed: {failures} "
            f"(p99 {storm['failed_p99_ms']:,.0f} ms)",
            f"STS throttled {throttled} of its {storm_sts['assume_role_calls']} AssumeRole calls",
            f"{ok / storm['players']:.0%} served",
            "none set (behaviour at the 100/s limit)",
            None,
            "#5",
        ),
    ]


def describe(result: dict[str, Any]) -> list[str]:
    work, storm = result["workload"], result["storm"]
    extra = work["sts"]["assume_role_calls"] - work["sts"]["assume_role_issued"]
    why = (
        [
            f"The workload's {extra} AssumeRole requests beyond one per key were answered "
            "Throttling.User by STS (the emulator's 100/s per-account window) and retried by "
            "Satchel's transport; every request counts against the account's quota, and a key "
            "whose retries ran out failed every request waiting on it.",
        ]
        if extra > 0
        else []
    )
    return [
        f"Workload: {work['requests']:,} IssueToken requests over {work['players']:,} players "
        f"(each {work['requests'] // work['players']} times, shuffled), "
        f"{result['config']['processes']} client processes x "
        f"{result['config']['concurrency']} concurrent callers: finished in "
        f"{work['wall_s']:.1f} s, statuses {work['statuses']}, latency p50 "
        f"{work['ok_p50_ms']:.0f} ms, p99 {work['ok_p99_ms']:.0f} ms (cold keys wait for "
        f"Satchel's STS budget); at the emulator: {work['sts']['assume_role_calls']} AssumeRole "
        f"requests, {work['sts']['assume_role_issued']} issued.",
        f"Storm: {storm['players']:,} cold players at once, each with a "
        f"{result['config']['storm_timeout_s']:.0f} s deadline: statuses {storm['statuses']}; "
        f"OK waited p50 {storm['ok_p50_ms']:.0f} ms / p99 {storm['ok_p99_ms']:.0f} ms / max "
        f"{storm['ok_max_ms']:.0f} ms; failures came after p50 {storm['failed_p50_ms']:.0f} ms /"
        f" p99 {storm['failed_p99_ms']:.0f} ms / max {storm['failed_max_ms']:.0f} ms; at the "
        f"emulator: {storm['sts']['assume_role_calls']} AssumeRole requests, "
        f"{storm['sts']['assume_role_issued']} issued, the rest answered Throttling.User; "
        f"server warnings logged: {storm['sts']['warnings_logged']}.",
        *why,
    ]
