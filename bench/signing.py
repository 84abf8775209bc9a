"""Signing speed: Satchel vs the official SDKs, same inputs, same run.

Run ``python -m bench.signing``. Prints microseconds per call (median of repetitions) and
the ratios; :func:`run` returns them as a dict for a ``make bench`` harness. Bounded: a
fixed number of calls per repetition, a few repetitions, well under a minute.

Targets (issue 3): a warm V4 GET presign with an ~800-byte STS token costs at most 1/10 of
alibabacloud-oss-v2's ``presign`` and at most 1/20 of ``oss2.StsAuth(..., 'v4').sign_url``.
"""

from __future__ import annotations

import datetime as dt
import functools
import statistics
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import alibabacloud_oss_v2 as oss
import oss2
from aliyunsdksts.request.v20150401.AssumeRoleRequest import AssumeRoleRequest

from bench.common import Row
from satchel_server.signing import (
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
# Spaces, reserved and non-ASCII characters: every one of them percent-encoded.
ESCAPE_KEY = "players/1234567/saves/slot 3 (copy) + ünïcødé #1?&=%~.sav"
# Satchel's share of each SDK's time per presign (issue 3, restated by issue 10).
TARGET_SHARES = {"oss_v2": 1 / 10, "oss2": 1 / 20}


@dataclass(frozen=True, slots=True)
class Case:
    version: str  # "v4" or "v1"
    token: str | None  # the STS security token; None: a RAM user's long-lived key
    key: str


# Issue 10: V4 and V1, with and without an STS token, plain and escape-heavy keys. "v4" is
# the case issue 3's targets are defined on (a warm V4 GET presign with an 800-byte token).
CASES = {
    "v4": Case("v4", TOKEN, KEY),
    "v4_notoken": Case("v4", None, KEY),
    "v4_escape": Case("v4", TOKEN, ESCAPE_KEY),
    "v1": Case("v1", TOKEN, KEY),
    "v1_notoken": Case("v1", None, KEY),
    "v1_escape": Case("v1", TOKEN, ESCAPE_KEY),
}


def _satchel(case: Case) -> Callable[[], object]:
    # Held by the broker: built once per credential.
    creds = SigningCredentials(AK, SK, case.token)
    endpoint = OssEndpoint(HOST)
    presign = presign_v4 if case.version == "v4" else presign_v1

    def call() -> object:
        now = dt.datetime.now(dt.UTC)  # the server passes its clock in; count it
        return presign(
            OssRequest(
                "GET", BUCKET, case.key, creds, now, region=REGION, expires=900, endpoint=endpoint
            )
        ).url

    return call


def _oss_v2(case: Case) -> Callable[[], object]:
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(AK, SK, case.token)
    cfg.region, cfg.endpoint, cfg.signature_version = REGION, HOST, case.version
    client = oss.Client(cfg)
    expires = dt.timedelta(seconds=900)
    request = oss.GetObjectRequest(bucket=BUCKET, key=case.key)
    return lambda: client.presign(request, expires=expires).url


def _oss2(case: Case) -> Callable[[], object]:
    auth: Any
    if case.token is not None:
        auth = oss2.StsAuth(AK, SK, case.token, auth_version=case.version)
    elif case.version == "v4":
        auth = oss2.AuthV4(AK, SK)
    else:
        auth = oss2.Auth(AK, SK)
    bucket = oss2.Bucket(auth, f"https://{HOST}", BUCKET, region=REGION)
    return lambda: bucket.sign_url("GET", case.key, 900, slash_safe=True)


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


# Issue 3 sets them on a V4 GET presign with an STS token, so they hold for every key
# shape with a token. Without a token the SDKs skip escaping the 800-byte token, their
# largest cost, so that case is reported for information only.
TARGETS = {
    f"{name}_vs_{sdk}": share
    for name, case in CASES.items()
    if case.version == "v4" and case.token is not None
    for sdk, share in TARGET_SHARES.items()
}

PRESIGNERS: dict[str, Callable[[Case], Callable[[], object]]] = {
    "satchel": _satchel,
    "oss_v2": _oss_v2,
    "oss2": _oss2,
}
CONTENDERS: dict[str, Callable[[], Callable[[], object]]] = {
    **{
        f"{case_name}_{impl}": functools.partial(make, case)
        for case_name, case in CASES.items()
        for impl, make in PRESIGNERS.items()
    },
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
        f"{case}_vs_{sdk}": us[f"{case}_satchel"] / us[f"{case}_{sdk}"]
        for case in CASES
        for sdk in TARGET_SHARES
    }
    ratios["rpc_vs_sdk_core"] = us["rpc_satchel"] / us["rpc_sdk_core"]
    met = {name: ratios[name] <= limit for name, limit in TARGETS.items()}
    return {
        "us": us,
        "ratios": ratios,
        "targets": TARGETS,
        "targets_met": met,
        "token_bytes": len(TOKEN),
    }


_CASE_LABELS = {
    "v4": "V4, STS token, plain key",
    "v4_notoken": "V4, no token, plain key",
    "v4_escape": "V4, STS token, escape-heavy key",
    "v1": "V1, STS token, plain key",
    "v1_notoken": "V1, no token, plain key",
    "v1_escape": "V1, STS token, escape-heavy key",
}


def rows(result: dict[str, Any]) -> list[Row]:
    us, ratios = result["us"], result["ratios"]
    table = []
    target = " / ".join(f">= {1 / share:.0f}x" for share in TARGET_SHARES.values()) + " faster"
    for name in CASES:
        pairs = [f"{name}_vs_{sdk}" for sdk in TARGET_SHARES]
        targeted = all(pair in TARGETS for pair in pairs)
        table.append(
            Row(
                f"Signing: presign GET ({_CASE_LABELS[name]})",
                f"{us[f'{name}_satchel']:.1f} us",
                f"alibabacloud-oss-v2 {us[f'{name}_oss_v2']:.1f} us; "
                f"oss2 {us[f'{name}_oss2']:.1f} us",
                " / ".join(f"{1 / ratios[pair]:.1f}x" for pair in pairs) + " faster",
                target if targeted else "none set (issue 3 targets V4 with a token)",
                all(ratios[pair] <= TARGETS[pair] for pair in pairs) if targeted else None,
                "#3",
            )
        )
    table.append(
        Row(
            "Signing: AssumeRole request (RPC 1.0)",
            f"{us['rpc_satchel']:.1f} us",
            f"aliyun-python-sdk-core {us['rpc_sdk_core']:.1f} us",
            f"{1 / ratios['rpc_vs_sdk_core']:.1f}x faster",
            "none set",
            None,
            "#3",
        )
    )
    return table


def describe(result: dict[str, Any]) -> list[str]:
    return [
        f"Median of interleaved rounds; STS token {result['token_bytes']} bytes; the escape-heavy "
        f"key is {ESCAPE_KEY!r}. Satchel's credentials are built once, as the server holds them.",
        "",
        "| contender | us per call |",
        "| --- | ---: |",
        *(f"| {name} | {value:.1f} |" for name, value in result["us"].items()),
    ]


def main() -> int:
    result = run()
    print(f"signing benchmark (median us per call; STS token {result['token_bytes']} bytes)")
    for name, value in result["us"].items():
        print(f"  {name:<22} {value:9.1f} us")
    print("ratios (Satchel / SDK; lower is faster):")
    for name, value in result["ratios"].items():
        target = TARGETS.get(name)
        verdict = (
            ""
            if target is None
            else (f"  target <= 1/{round(1 / target)}: {'MET' if value <= target else 'MISSED'}")
        )
        print(f"  {name:<24} {value:7.4f}  (1/{1 / value:.1f}){verdict}")
    return 0 if all(result["targets_met"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
