"""GetBucketCors and GetBucketLocation, each under its own RAM action, read by oss2; and
STS's Date header, which follows the emulator's (injectable) clock."""

from __future__ import annotations

import asyncio
from email.utils import parsedate_to_datetime
from pathlib import Path

import aiohttp
import oss2
import pytest
from component.emulator_fixtures import assume_role, emulator, oss2_bucket, player_policy

from satchel_server.emulator import accounts as acc
from satchel_server.emulator.runner import Emulator, running_emulator
from satchel_server.emulator.state import EmulatorConfig

__all__ = ["emulator"]


@pytest.mark.asyncio
async def test_the_dev_bucket_answers_its_cors_rule_and_location(tmp_path: Path) -> None:
    async with running_emulator(EmulatorConfig(data_dir=tmp_path)) as emu:
        bucket = oss2_bucket(emu)
        cors = await asyncio.to_thread(bucket.get_bucket_cors)
        location = await asyncio.to_thread(bucket.get_bucket_location)
    (rule,) = cors.rules
    assert rule.allowed_origins == acc.DEV_CORS_RULE["allowed_origins"]
    assert rule.allowed_methods == acc.DEV_CORS_RULE["allowed_methods"]
    assert rule.expose_headers == acc.DEV_CORS_RULE["expose_headers"]
    assert rule.max_age_seconds == acc.DEV_CORS_RULE["max_age_seconds"]
    assert location.location == f"oss-{acc.DEV_REGION}"


@pytest.mark.asyncio
async def test_a_bucket_without_cors_answers_no_such_cors_configuration(emulator: Emulator) -> None:
    bucket = oss2_bucket(emulator)
    with pytest.raises(oss2.exceptions.NoSuchCors) as raised:
        await asyncio.to_thread(bucket.get_bucket_cors)
    assert raised.value.status == 404
    assert raised.value.code == "NoSuchCORSConfiguration"


@pytest.mark.asyncio
async def test_bucket_reads_need_their_own_ram_actions(emulator: Emulator) -> None:
    # A player's session policy grants object actions and a confined list: neither read.
    player = await asyncio.to_thread(assume_role, emulator, policy=player_policy("p1"))
    bucket = oss2_bucket(emulator, player["Credentials"])
    for read in (bucket.get_bucket_cors, bucket.get_bucket_location):
        with pytest.raises(oss2.exceptions.AccessDenied):
            await asyncio.to_thread(read)
    # The role alone (oss:* on the bucket) may read the location.
    role = await asyncio.to_thread(assume_role, emulator)
    location = await asyncio.to_thread(
        oss2_bucket(emulator, role["Credentials"]).get_bucket_location
    )
    assert location.location == f"oss-{acc.DEV_REGION}"


@pytest.mark.asyncio
async def test_sts_date_header_follows_the_injected_clock(tmp_path: Path) -> None:
    moment = 1_900_000_000.0
    async with (
        running_emulator(EmulatorConfig(data_dir=tmp_path), clock=lambda: moment) as emu,
        aiohttp.ClientSession() as session,
        session.get(emu.sts_url + "/?Format=JSON") as response,
    ):
        date = response.headers["Date"]
        body = await response.json()
    assert parsedate_to_datetime(date).timestamp() == moment
    assert "RequestId" in body
