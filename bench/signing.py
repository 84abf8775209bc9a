"""Signing speed: Satchel vs the official SDKs, same inputs, same run.

Run ``python -m bench.signing``. Prints microseconds per call (median of repetitions) and
the ratios; :func:`run` returns them as a dict for a ``make bench`` harness. Bounded: a
fixed number of calls per repetition, a few repetitions, well under a minute.

Targets (issue 3): a warm V4 GET presign with an ~800-byte STS token costs at most 1/10 of
alibabacloud-oss-v2's ``presign`` and at most 1/20 of ``oss2.StsAuth(..., 'v4').sign_url``.
"""

from __future__ import annotations

import datetime as dt
import statistics
import timeit
from collections.abc import Callable
from typing import Any

import alibabacloud_oss_v2 as oss
import oss2
from aliyunsdksts.request.v20150401.AssumeRoleRequest import AssumeRoleRequest

from service.signing import (
    OssEndpoint,
    OssRequest,
    RpcRequest,
    SigningCredentials,
    presign_v1,
    presign_v4,
    sign_rpc,
)

AK, SK = "STS.NSatchelBenchKey1234", "satchel-bench-secret-0123456789abcdef"
TOKEN = ("CAIS" + "8wF1q6Ft5B2yfSjIr5bSD+/Tlp/A3L1K0K+jY0vhkDQ3T/1Iq7Xo" * 16)[:800]
REGION, HOST, BUCKET = "cn-hangzhou", "oss-cn-hangzhou.aliyuncs.com", "satchel-bench"
KEY = "players/1234567/saves/slot-3.sav"
TARGETS = {"v4_vs_oss_v2": 1 / 10, "v4_vs_oss2": 1 / 20}


def _satchel(version: str) -> Callable[[], object]:
    creds = SigningCredentials(AK, SK, TOKEN)  # held by the broker: built once per credential
    endpoint = OssEndpoint(HOST)
    presign = presign_v4 if version == "v4" else presign_v1

    def call() -> object:
        now = dt.datetime.now(dt.UTC)  # the server passes its clock in; count it
        return presign(
            OssRequest(
                "GET", BUCKET, KEY, creds, now, region=REGION, expires=900, endpoint=endpoint
            )
        ).url

    return call


def _oss_v2(version: str) -> Callable[[], object]:
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(AK, SK, TOKEN)
    cfg.region, cfg.endpoint, cfg.signature_version = REGION, HOST, version
    client = oss.Client(cfg)
    expires = dt.timedelta(seconds=900)
    return lambda: client.presign(oss.GetObjectRequest(bucket=BUCKET, key=KEY), expires=expires).url


def _oss2(version: str) -> Callable[[], object]:
    auth = oss2.StsAuth(AK, SK, TOKEN, auth_version=version)
    bucket = oss2.Bucket(auth, f"https://{HOST}", BUCKET, region=REGION)
    return lambda: bucket.sign_url("GET", KEY, 900, slash_safe=True)


def _rpc_satchel() -> Callable[[], object]:
    creds = SigningCredentials("LTAI5tBenchKey", SK)
    params = {
        "RoleArn": "acs:ram::1234567890123456:role/satchel",
        "RoleSessionName": "p-42",
        "DurationSeconds": "900",
        "RegionId": REGION,
    }
    return lambda: (
        sign_rpc(
            RpcRequest(
                "POST",
                "AssumeRole",
                "2015-04-01",
                creds,
                dt.datetime.now(dt.UTC),
                "nonce-1",
                params=params,
            )
        ).query
    )


def _rpc_sdk_core() -> Callable[[], object]:
    def call() -> object:
        req = AssumeRoleRequest()
        req.set_accept_format("JSON")
        req.set_RoleArn("acs:ram::1234567890123456:role/satchel")
        req.set_RoleSessionName("p-42")
        req.set_DurationSeconds("900")
        return req.get_url(REGION, "LTAI5tBenchKey", SK)

    return call


CONTENDERS: dict[str, Callable[[], Callable[[], object]]] = {
    "v4_satchel": lambda: _satchel("v4"),
    "v4_oss_v2": lambda: _oss_v2("v4"),
    "v4_oss2": lambda: _oss2("v4"),
    "v1_satchel": lambda: _satchel("v1"),
    "v1_oss_v2": lambda: _oss_v2("v1"),
    "v1_oss2": lambda: _oss2("v1"),
    "rpc_satchel": _rpc_satchel,
    "rpc_sdk_core": _rpc_sdk_core,
}


def run(repeats: int = 7, ours: int = 2000, theirs: int = 200) -> dict[str, Any]:
    """Measure everything; returns {"us": {...}, "ratios": {...}, "targets_met": {...}}.

    Repetitions are interleaved (each round times every contender once) so that a load
    spike on a shared machine hits all of them alike; each figure is a median of rounds.
    """
    calls = {name: make() for name, make in CONTENDERS.items()}
    for call in calls.values():
        call()  # warm: caches, lazy imports, the V4 key
    rounds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            number = ours if name.endswith("_satchel") else theirs
            rounds[name].append(timeit.timeit(call, number=number) / number * 1e6)
    us = {name: statistics.median(values) for name, values in rounds.items()}
    ratios = {
        "v4_vs_oss_v2": us["v4_satchel"] / us["v4_oss_v2"],
        "v4_vs_oss2": us["v4_satchel"] / us["v4_oss2"],
        "v1_vs_oss_v2": us["v1_satchel"] / us["v1_oss_v2"],
        "v1_vs_oss2": us["v1_satchel"] / us["v1_oss2"],
        "rpc_vs_sdk_core": us["rpc_satchel"] / us["rpc_sdk_core"],
    }
    met = {name: ratios[name] <= limit for name, limit in TARGETS.items()}
    return {
        "us": us,
        "ratios": ratios,
        "targets": TARGETS,
        "targets_met": met,
        "token_bytes": len(TOKEN),
    }


def main() -> int:
    result = run()
    print(f"signing benchmark (median us per call; STS token {result['token_bytes']} bytes)")
    for name, value in result["us"].items():
        print(f"  {name:<14} {value:9.1f} us")
    print("ratios (Satchel / SDK; lower is faster):")
    for name, value in result["ratios"].items():
        target = TARGETS.get(name)
        verdict = (
            ""
            if target is None
            else (f"  target <= 1/{round(1 / target)}: {'MET' if value <= target else 'MISSED'}")
        )
        print(f"  {name:<16} {value:7.4f}  (1/{1 / value:.1f}){verdict}")
    return 0 if all(result["targets_met"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
