"""Batch presigning: server CPU per URL, 50 URLs in one PresignObjects call against 50
PresignObject calls, on the same Satchel process in the same run.

Satchel runs as `satchel dev` wires it (call pipeline, audit lines to a file, metrics); load
comes from separate client processes, as in the RPC bench. Rounds alternate (single calls,
then batches, ...) and the ratio is the median over rounds of each batch round's CPU per URL
against the single-call round just before it, so drifts in the machine's load cancel within
a pair. CPU time is the server process's own (every thread), so the clients' share of the
cores does not distort it.

Target (issue 21): a URL presigned in a 50-item call costs the server at most 1/8 of the CPU
of one PresignObject call.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import asdict
from typing import Any

from bench.common import Row, median
from bench.load import LoadPool, median_of
from bench.rpc import PRESIGN, RpcConfig, load_round
from bench.servers import ServerProcess, ServerSpec
from satchel.v1 import token_service_pb2 as pb

PRESIGN_MANY = "/satchel.v1.TokenService/PresignObjects"
ITEMS = 50
TARGET_SHARE = 1 / 8

FULL = RpcConfig(repeats=8, window_s=1.0, warmup_s=0.3, processes=2, concurrency=8, players=16)
QUICK = RpcConfig(repeats=1, window_s=0.3, warmup_s=0.05, processes=1, concurrency=2, players=2)


def _keys() -> list[str]:
    return [f"gallery/shot-{index:02d}.png" for index in range(ITEMS)]


def _requests(players: int) -> dict[str, tuple[bytes, ...]]:
    ids = [f"bench-{index:04d}" for index in range(players)]
    return {
        "single": tuple(
            pb.PresignObjectRequest(
                player_id=player, key=key, method=pb.HTTP_METHOD_GET
            ).SerializeToString()
            for player in ids
            for key in _keys()
        ),
        "batch": tuple(
            pb.PresignObjectsRequest(
                player_id=player,
                items=[pb.PresignItem(key=key, method=pb.HTTP_METHOD_GET) for key in _keys()],
            ).SerializeToString()
            for player in ids
        ),
    }


def run(config: RpcConfig = FULL) -> dict[str, Any]:
    requests = _requests(config.players)
    rounds: dict[str, list[dict[str, Any]]] = {"single": [], "batch": []}
    with (
        closing(LoadPool(config.processes)) as pool,
        closing(ServerProcess(ServerSpec("satchel"))) as satchel,
    ):
        for _ in range(config.repeats):
            for name, method in (("single", PRESIGN), ("batch", PRESIGN_MANY)):
                rounds[name].append(load_round(pool, satchel, method, requests[name], config))
    for found in rounds["batch"]:
        found["server_cpu_us_per_url"] = found["server_cpu_us_per_call"] / ITEMS
    for found in rounds["single"]:
        found["server_cpu_us_per_url"] = found["server_cpu_us_per_call"]
    ratio = median(
        [
            batch["server_cpu_us_per_url"] / single["server_cpu_us_per_url"]
            for single, batch in zip(rounds["single"], rounds["batch"], strict=True)
            if single["server_cpu_us_per_url"]
        ]
    )
    return {
        "config": asdict(config),
        "items_per_call": ITEMS,
        "request_bytes": {name: len(payloads[0]) for name, payloads in requests.items()},
        "contenders": {
            name: {
                "server_cpu_us_per_url": median_of(runs, "server_cpu_us_per_url"),
                "calls_per_s": median_of(runs, "rps"),
                "p50_ms": median_of(runs, "ok_p50_ms"),
                "failed_calls": sum(r["calls"] - r["statuses"].get("OK", 0) for r in runs),
                "sts_calls": sum(r["sts_calls"] for r in runs),
                "rounds": runs,
            }
            for name, runs in rounds.items()
        },
        "batch_cost_share": ratio,
        "targets_met": {"batch_cost_share": 0 < ratio <= TARGET_SHARE},
    }


def rows(result: dict[str, Any]) -> list[Row]:
    single, batch = result["contenders"]["single"], result["contenders"]["batch"]
    share = result["batch_cost_share"]
    return [
        Row(
            f"PresignObjects ({result['items_per_call']} GET items): server CPU per URL",
            f"{batch['server_cpu_us_per_url']:.1f} us/URL",
            f"PresignObject {single['server_cpu_us_per_url']:.0f} us/URL",
            f"{share:.3f} (1/{1 / share:.1f})" if share else "-",
            f"<= 1/{round(1 / TARGET_SHARE)} of PresignObject's",
            result["targets_met"]["batch_cost_share"],
            "#21",
        )
    ]


def describe(result: dict[str, Any]) -> list[str]:
    config = result["config"]
    lines = [
        f"Load: {config['processes']} client processes x {config['concurrency']} concurrent "
        f"callers, {config['repeats']} alternating rounds of {config['window_s']} s "
        f"(+{config['warmup_s']} s warm-up) per contender, {config['players']} players, "
        f"{result['items_per_call']} keys each. The ratio is the median of per-round ratios "
        "(each batch round against the single-call round just before it).",
        f"Requests (bytes): PresignObject {result['request_bytes']['single']}, PresignObjects "
        f"{result['request_bytes']['batch']}.",
        "",
        "| contender | calls/s | p50 ms | server CPU us/URL | failed calls | STS calls |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, found in result["contenders"].items():
        lines.append(
            f"| {name} | {found['calls_per_s']:,.0f} | {found['p50_ms']:.2f} "
            f"| {found['server_cpu_us_per_url']:.1f} | {found['failed_calls']} "
            f"| {found['sts_calls']} |"
        )
    return lines
