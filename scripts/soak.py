"""A bounded soak: mixed IssueToken and PresignObject load while the emulator misbehaves.

    python scripts/soak.py [--seconds 60] [--concurrency 32] [--audit FILE]

Satchel (wired as `satchel dev` wires it) and the emulator run in this process on
loopback. For the whole run the emulator's STS alternates between 10% errors and
10% latency spikes. The run fails (exit 1) if the server ever answers with a
status it should not, returns a credential or URL with less life than promised,
grows in memory, tasks or file descriptors after warm-up, or writes a secret to
the log. The audit lines (one per call) go to a file: the run prints their summary
and the file's path.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
from google.protobuf.duration_pb2 import Duration

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.stack import Stack, running_stack

from satchel.v1 import token_service_pb2 as pb
from satchel_server.config import SIGNER_MARGIN_SECONDS
from satchel_server.emulator.faults import FaultPlan
from satchel_server.emulator.runner import running_emulator
from satchel_server.emulator.state import EmulatorConfig
from satchel_server.observability import logs
from satchel_server.wiring import dev_settings

# What a correct server may answer under injected upstream faults.
ACCEPTABLE = {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
PLAYERS = 400
FAULT_PHASES = (FaultPlan(status=503, rate=0.1), FaultPlan(latency_s=0.5, rate=0.1))


@dataclass
class Findings:
    statuses: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)  # t, rss, tasks, fds


# Enough secrets to search the log for; more would make the soak's own memory grow.
MAX_REMEMBERED = 5000


def remember(found: Findings, *secrets: str) -> None:
    if len(found.secrets) < MAX_REMEMBERED:
        found.secrets.update(secrets)


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def issue(stack: Stack, rng: random.Random, found: Findings) -> None:
    ttl = rng.choice([900, 1800, 3600])
    request = pb.IssueTokenRequest(
        player_id=f"p{rng.randrange(PLAYERS)}",
        permissions=[pb.PERMISSION_READ, pb.PERMISSION_WRITE],
        ttl=Duration(seconds=ttl),
    )
    reply = await stack.stub.IssueToken(request, timeout=3)
    remember(found, reply.credentials.access_key_secret, reply.credentials.security_token)
    left = (reply.credentials.expiration.ToDatetime(UTC) - datetime.now(UTC)).total_seconds()
    promised = max(300, 0.5 * ttl)  # [cache] min_remaining_seconds and min_remaining_share
    if left < promised - 2:
        found.problems.append(f"IssueToken returned {left:.0f} s of life, promised {promised}")


async def presign(stack: Stack, rng: random.Random, found: Findings) -> None:
    method = rng.choice([pb.HTTP_METHOD_GET, pb.HTTP_METHOD_PUT, pb.HTTP_METHOD_POST])
    request = pb.PresignObjectRequest(
        player_id=f"p{rng.randrange(PLAYERS)}",
        key=f"saves/{rng.randrange(50)}.dat",
        method=method,
        expires_in=Duration(seconds=600),
        content_length=rng.randrange(1024) if method == pb.HTTP_METHOD_PUT else None,
    )
    reply = await stack.stub.PresignObject(request, timeout=3)
    remember(found, *(v for k, v in reply.form_fields.items() if "signature" in k.lower()))
    remember(found, reply.url.rsplit("=", 1)[-1])  # the URL's signature
    left = (reply.expiration.ToDatetime(UTC) - datetime.now(UTC)).total_seconds()
    if not 0 < left <= 600:
        found.problems.append(f"PresignObject expiration {left:.0f} s away, asked 600")


async def worker(stack: Stack, seed: int, stop_at: float, found: Findings) -> None:
    rng = random.Random(seed)
    while time.monotonic() < stop_at:
        call = issue if rng.random() < 0.5 else presign
        try:
            await call(stack, rng, found)
            found.statuses["OK"] += 1
        except grpc.aio.AioRpcError as error:
            found.statuses[error.code().name] += 1
            if error.code() not in ACCEPTABLE:
                found.problems.append(f"{call.__name__}: {error.code().name} {error.details()}")


async def faults_and_samples(stack: Stack, stop_at: float, found: Findings) -> None:
    phase = 0
    while time.monotonic() < stop_at:
        stack.emulator.faults.set("sts", FAULT_PHASES[phase % len(FAULT_PHASES)])
        phase += 1
        fds = len(os.listdir("/proc/self/fd"))
        found.samples.append((time.monotonic(), rss_kib(), len(asyncio.all_tasks()), fds))
        await asyncio.sleep(1.0)
    stack.emulator.faults.clear()


def check_growth(found: Findings) -> None:
    """After warm-up (the first third), the second half must not outgrow the first."""
    samples = found.samples[len(found.samples) // 3 :]
    if len(samples) < 4:
        return
    half = len(samples) // 2
    for index, name, slack in ((1, "RSS KiB", 16 * 1024), (2, "tasks", 8), (3, "fds", 8)):
        early = max(s[index] for s in samples[:half])
        late = max(s[index] for s in samples[half:])
        if late > early + slack:
            found.problems.append(f"{name} grew from {early} to {late}")


async def soak(seconds: float, concurrency: int, audit: Path) -> Findings:
    found = Findings()
    log_stream = io.StringIO()
    logs.configure("INFO", json_lines=True, stream=log_stream)
    with tempfile.TemporaryDirectory() as data:
        async with running_emulator(EmulatorConfig(data_dir=Path(data))) as emulator:
            settings = dev_settings("127.0.0.1:0", emulator, audit_output=str(audit))
            async with running_stack(emulator, settings) as stack:
                stop_at = time.monotonic() + seconds
                await asyncio.gather(
                    faults_and_samples(stack, stop_at, found),
                    *(worker(stack, seed, stop_at, found) for seed in range(concurrency)),
                )
    text = log_stream.getvalue()
    leaked = [s for s in found.secrets if s and len(s) >= 16 and s in text]
    if leaked:
        found.problems.append(f"{len(leaked)} secrets or signatures appear in the log")
    check_growth(found)
    return found


def audit_summary(audit: Path) -> str:
    outcomes: Counter[str] = Counter()
    with audit.open(encoding="utf-8") as lines:
        for line in lines:
            outcomes[json.loads(line)["outcome"]] += 1
    megabytes = audit.stat().st_size / 1e6
    return f"{outcomes.total()} lines ({megabytes:.1f} MB), {dict(outcomes)}, in {audit}"


def new_audit_file() -> Path:
    descriptor, name = tempfile.mkstemp(prefix="satchel-soak-audit-", suffix=".jsonl")
    os.close(descriptor)
    return Path(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--audit", type=Path, help="append audit lines here (default: a new file in $TMPDIR)"
    )
    args = parser.parse_args()
    audit = args.audit or new_audit_file()
    found = asyncio.run(soak(args.seconds, args.concurrency, audit))
    print(f"soak {args.seconds:.0f} s, {sum(found.statuses.values())} RPCs: {dict(found.statuses)}")
    print(f"audit: {audit_summary(audit)}")
    print(f"signer margin {SIGNER_MARGIN_SECONDS} s; samples (t, RSS KiB, tasks, fds):")
    for t, rss, tasks, fds in found.samples[:: max(1, len(found.samples) // 6)]:
        print(f"  {t - found.samples[0][0]:6.1f} s  {rss:8d}  {tasks:5d}  {fds:5d}")
    for problem in found.problems[:20]:
        print(f"PROBLEM: {problem}")
    print("soak: " + ("FAILED" if found.problems else "passed"))
    return 1 if found.problems else 0


if __name__ == "__main__":
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    raise SystemExit(main())
