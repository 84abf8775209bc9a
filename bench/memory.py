"""Memory: resident bytes per cached credential, with 100,000 players in the broker's cache.

In a fresh process: build a CredentialBroker (satchel_server.credentials.broker) on the
`satchel dev` scope and a fake in-process StsClient that mints credentials of realistic size
(an 800-character security token, unique per player), note the RSS, fill the cache one player
at a time, collect garbage, note the RSS again. The baseline is the raw size of what STS
returned (the four strings and the RequestId): what any cache must keep at the least.

Target (issue 10): <= 3 KB of RSS per cached credential.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import gc
import multiprocessing
import os
import uuid
from concurrent.futures import ProcessPoolExecutor
from types import SimpleNamespace
from typing import Any, cast

from bench.common import Row, rss_bytes
from satchel_server.credentials.broker import AssumeRoleRequest, AssumeRoleResult, CredentialBroker
from satchel_server.credentials.budget import TokenBucket
from satchel_server.credentials.types import TemporaryCredentials
from satchel_server.emulator.runner import Emulator
from satchel_server.rules.scopes import validate_token_request
from satchel_server.vocabulary import PlayerPermission
from satchel_server.wiring import dev_settings

TARGET_BYTES = 3 * 1024
TOKEN_CHARS = 800
PLAYERS = 100_000
TIMEOUT_S = 240.0


def _random_text(chars: int) -> str:
    # base64 of random bytes: unique, incompressible, the alphabet STS uses.
    return base64.b64encode(os.urandom(chars * 3 // 4 + 3)).decode()[:chars]


class FakeSts:
    """An StsClient that answers at once with fresh, realistic-size credentials."""

    def __init__(self) -> None:
        self.raw_bytes = 0

    async def assume_role(
        self, request: AssumeRoleRequest, *, deadline: float | None
    ) -> AssumeRoleResult:
        access_key_id = "STS." + _random_text(25)  # STS ids are 29 characters
        secret = _random_text(44)
        token = _random_text(TOKEN_CHARS)
        request_id = str(uuid.uuid4()).upper()
        self.raw_bytes += len(access_key_id) + len(secret) + len(token) + len(request_id)
        expiration = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(
            seconds=request.duration_seconds
        )
        return AssumeRoleResult(
            TemporaryCredentials(access_key_id, secret, token, expiration), request_id
        )


async def _fill(players: int) -> dict[str, Any]:
    # The real dev scope; the URLs are never called (the STS client is fake).
    unused = SimpleNamespace(sts_url="http://127.0.0.1:9", oss_url="http://127.0.0.1:9")
    settings = dev_settings("127.0.0.1:0", cast(Emulator, unused))
    sts = FakeSts()
    broker = CredentialBroker(sts, settings.cache, TokenBucket(1e9))
    ids = [f"player-{index:07d}" for index in range(players)]  # made before the first RSS
    gc.collect()
    before = rss_bytes()
    for player in ids:
        request = validate_token_request(
            settings.scopes,
            scope_name="",
            player_id=player,
            permissions=[PlayerPermission.READ],
            ttl_seconds=None,
        )
        await broker.credentials_for(request, deadline=None)
    gc.collect()
    after = rss_bytes()
    return {
        "players": players,
        "cached": len(broker),
        "sts_calls": broker.stats.sts_calls,
        "rss_before": before,
        "rss_after": after,
        "raw_bytes_per_credential": sts.raw_bytes / players,
        "token_chars": TOKEN_CHARS,
    }


def measure(players: int) -> dict[str, Any]:
    """Entry point in the fresh process."""
    return asyncio.run(_fill(players))


def run(players: int = PLAYERS) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        result = pool.submit(measure, players).result(timeout=TIMEOUT_S)
    if result["rss_before"] is None or result["rss_after"] is None:
        result["bytes_per_credential"] = None
        result["targets_met"] = {"bytes_per_credential": None}
        return result
    per = (result["rss_after"] - result["rss_before"]) / players
    result["bytes_per_credential"] = per
    result["targets_met"] = {"bytes_per_credential": per <= TARGET_BYTES}
    return result


def rows(result: dict[str, Any]) -> list[Row]:
    per = result["bytes_per_credential"]
    raw = result["raw_bytes_per_credential"]
    return [
        Row(
            f"Memory: RSS per cached credential ({result['cached']:,} players cached)",
            "RSS not readable here" if per is None else f"{per:,.0f} bytes",
            f"raw STS answer {raw:,.0f} bytes",
            "-" if per is None else f"{per / raw:.2f}x raw",
            f"<= {TARGET_BYTES:,} bytes",
            result["targets_met"]["bytes_per_credential"],
            "#10",
        )
    ]


def describe(result: dict[str, Any]) -> list[str]:
    mib = 1024 * 1024
    before, after = result["rss_before"] or 0, result["rss_after"] or 0
    return [
        f"Fresh process, CredentialBroker on the dev scope, fake STS minting a "
        f"{result['token_chars']}-character token per player: RSS {before / mib:.1f} MiB before, "
        f"{after / mib:.1f} MiB after {result['players']:,} players "
        f"({result['cached']:,} cached, {result['sts_calls']:,} fake AssumeRole calls)."
    ]
