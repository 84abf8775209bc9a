"""`satchel doctor` against the emulator: a correct set-up passes; each broken one is named.

Each test writes a Satchel config pointing at a running emulator whose accounts (roles,
trust, ExternalIds, buckets, regions, CORS rules) are set up right or broken one way.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from component.redis_fixtures import redis_server, redis_session
from support.redis_server import RedisServer

from satchel_server.config import (
    ACCESS_KEY_ID_ENV,
    ACCESS_KEY_SECRET_ENV,
    CACHE_KEYS_ENV,
    CREDENTIALS_URI_ENV,
    ECS_METADATA_DISABLED_ENV,
)
from satchel_server.doctor import run as doctor
from satchel_server.doctor.report import CheckResult, Outcome
from satchel_server.emulator import accounts as acc
from satchel_server.emulator.runner import Emulator, running_emulator
from satchel_server.emulator.state import EmulatorConfig

__all__ = ["redis_server", "redis_session"]

BUCKET = acc.DEV_BUCKET
BARE_BUCKET = "satchel-no-cors"
EXTERNAL_ID = "ext-doctor-1"


def _role_policy(bucket: str, actions: list[str]) -> str:
    """A role confined to players/ (plus the bucket-level reads the doctor makes)."""
    return json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": actions,
                    "Resource": f"acs:oss:*:*:{bucket}/players/*",
                },
                {
                    "Effect": "Allow",
                    "Action": ["oss:ListObjects", "oss:GetBucketLocation", "oss:GetBucketCors"],
                    "Resource": f"acs:oss:*:*:{bucket}",
                },
            ],
        }
    )


ALL_OBJECT_ACTIONS = ["oss:GetObject", "oss:PutObject", "oss:DeleteObject"]


def _role(name: str, policy: str, external_id: str | None = None) -> str:
    external = f'external_id = "{external_id}"\n' if external_id else ""
    return (
        f'[[accounts.roles]]\nname = "{name}"\ntrusted_users = ["{acc.DEV_USER}"]\n'
        f"max_session_duration = 3600\n{external}policies = ['{policy}']\n"
    )


ACCOUNTS_TOML = (
    f'[[accounts]]\nid = "{acc.DEV_ACCOUNT_ID}"\n'
    f'[[accounts.users]]\nname = "{acc.DEV_USER}"\n'
    f'access_key_id = "{acc.DEV_ACCESS_KEY_ID}"\n'
    f'access_key_secret = "{acc.DEV_ACCESS_KEY_SECRET}"\n'
    + _role("good", _role_policy(BUCKET, ALL_OBJECT_ACTIONS), EXTERNAL_ID)
    + _role("no-put", _role_policy(BUCKET, ["oss:GetObject", "oss:DeleteObject"]), EXTERNAL_ID)
    + _role("bare", _role_policy(BARE_BUCKET, ALL_OBJECT_ACTIONS))
    # The dev role: oss:* on the whole bucket, wider than the players/ root.
    + _role(acc.DEV_ROLE, acc.DEV_ROLE_POLICY)
    + f'[[accounts.buckets]]\nname = "{BUCKET}"\nregion = "{acc.DEV_REGION}"\n'
    + '[[accounts.buckets.cors]]\nallowed_origins = ["*"]\nallowed_methods = ["GET", "PUT"]\n'
    + f'[[accounts.buckets]]\nname = "{BARE_BUCKET}"\nregion = "{acc.DEV_REGION}"\n'
)

ENVIRON = {
    ACCESS_KEY_ID_ENV: acc.DEV_ACCESS_KEY_ID,
    ACCESS_KEY_SECRET_ENV: acc.DEV_ACCESS_KEY_SECRET,
}


def role_arn(name: str) -> str:
    return f"acs:ram::{acc.DEV_ACCOUNT_ID}:role/{name}"


async def _emulator(tmp_path: Path, clock: Callable[[], float]) -> AsyncIterator[Emulator]:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(ACCOUNTS_TOML)
    config = EmulatorConfig(data_dir=tmp_path / "data", accounts_file=accounts)
    async with running_emulator(config, clock) as emu:
        yield emu


@pytest_asyncio.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    async for emu in _emulator(tmp_path, time.time):
        yield emu


def write_config(tmp_path: Path, emu: Emulator, *, extra: str = "", **scope: str) -> Path:
    values = {
        "bucket": BUCKET,
        "region": acc.DEV_REGION,
        "role_arn": role_arn("good"),
        "external_id": EXTERNAL_ID,
        "endpoint": emu.oss_url,
        "addressing": "path",
        **scope,
    }
    lines = "".join(f'{key} = "{value}"\n' for key, value in values.items())
    path = tmp_path / "satchel.toml"
    path.write_text(
        f'[sts]\nendpoint = "{emu.sts_url}"\n[scopes.saves]\n{lines}'
        'permissions = ["read", "write", "list", "delete"]\n' + extra
    )
    return path


async def run_doctor(
    path: Path, environ: dict[str, str] | None = None, clock: Callable[[], datetime] | None = None
) -> dict[str, CheckResult]:
    results: list[CheckResult] = []
    await doctor.check(
        path,
        environ if environ is not None else ENVIRON,
        clock=clock or (lambda: datetime.now(UTC)),
        emit=results.append,
    )
    lines = [result.line() for result in results]
    assert len({r.name for r in results}) == len(results), lines
    return {result.name: result for result in results}


def outcomes(results: dict[str, CheckResult]) -> dict[str, Outcome]:
    return {name: result.outcome for name, result in results.items()}


@pytest.mark.asyncio
async def test_a_correct_set_up_passes_every_check(tmp_path: Path, emulator: Emulator) -> None:
    results = await run_doctor(write_config(tmp_path, emulator))
    assert set(outcomes(results).values()) == {Outcome.PASS}, [r.line() for r in results.values()]
    assert list(results) == [
        "config",
        "STS answers",
        "clock",
        "credentials",
        "scope saves: AssumeRole",
        "scope saves: player credential in players/satchel-doctor/",
        "scope saves: player credential confined",
        "scope saves: role's own reach",
        "scope saves: bucket region",
        "scope saves: bucket CORS",
        "scope saves: presigned GET",
    ]
    assert (
        "put, get, list, delete work"
        in results["scope saves: player credential in players/satchel-doctor/"].detail
    )
    assert results["credentials"].detail == f"from env, AccessKeyId {acc.DEV_ACCESS_KEY_ID}"
    # The probe cleaned up after itself.
    listing = emulator.state.store.list_objects(
        BUCKET, prefix="", delimiter="", start_after="", max_keys=10
    )
    assert not listing.objects


@pytest.mark.asyncio
async def test_a_wrong_external_id_fails_assume_role(tmp_path: Path, emulator: Emulator) -> None:
    results = await run_doctor(write_config(tmp_path, emulator, external_id="ext-wrong"))
    failed = results["scope saves: AssumeRole"]
    assert failed.outcome is Outcome.FAIL
    assert "NoPermission" in failed.detail
    assert "scopes.saves.external_id" in failed.fix
    # Nothing that needs the role ran.
    assert "scope saves: presigned GET" not in results


@pytest.mark.asyncio
async def test_a_role_without_put_object_is_named(tmp_path: Path, emulator: Emulator) -> None:
    results = await run_doctor(write_config(tmp_path, emulator, role_arn=role_arn("no-put")))
    failed = results["scope saves: player credential in players/satchel-doctor/"]
    assert failed.outcome is Outcome.FAIL
    assert failed.detail.startswith("oss:PutObject: HTTP 403 AccessDenied")
    assert f"allow oss:PutObject on acs:oss:*:*:{BUCKET}/players/*" in failed.fix
    assert results["scope saves: AssumeRole"].outcome is Outcome.PASS


@pytest.mark.asyncio
async def test_the_wrong_region_is_named(tmp_path: Path, emulator: Emulator) -> None:
    results = await run_doctor(write_config(tmp_path, emulator, region="cn-shanghai"))
    region = results["scope saves: bucket region"]
    assert region.outcome is Outcome.FAIL
    assert region.detail == f"{BUCKET} is in {acc.DEV_REGION}, not cn-shanghai"
    assert f'scopes.saves.region = "{acc.DEV_REGION}"' in region.fix
    # Players' V4 signatures name the region too: their check says so.
    folder = results["scope saves: player credential in players/satchel-doctor/"]
    assert folder.outcome is Outcome.FAIL
    assert "scopes.saves.region must be the bucket's region" in folder.fix


@pytest.mark.asyncio
async def test_a_skewed_clock_fails_the_clock_check(tmp_path: Path) -> None:
    # STS (and OSS) think it is 400 s later than this machine: within their own 15-minute
    # signature tolerance, so every other check still runs, but beyond the doctor's 5 minutes.
    async for emu in _emulator(tmp_path, lambda: time.time() + 400):
        results = await run_doctor(write_config(tmp_path, emu))
    clock = results["clock"]
    assert clock.outcome is Outcome.FAIL
    assert "is 400 s off" in clock.detail or "is 399 s off" in clock.detail
    assert "NTP" in clock.fix
    assert results["scope saves: AssumeRole"].outcome is Outcome.PASS


@pytest.mark.asyncio
async def test_an_injected_clock_within_five_minutes_passes(
    tmp_path: Path, emulator: Emulator
) -> None:
    path = write_config(tmp_path, emulator)
    results = await run_doctor(path, clock=lambda: datetime.now(UTC) - timedelta(seconds=200))
    assert results["clock"].outcome is Outcome.PASS


@pytest.mark.asyncio
async def test_a_missing_cors_rule_only_warns(tmp_path: Path, emulator: Emulator) -> None:
    path = write_config(
        tmp_path, emulator, bucket=BARE_BUCKET, role_arn=role_arn("bare"), external_id=""
    )
    results = await run_doctor(path)
    cors = results["scope saves: bucket CORS"]
    assert cors.outcome is Outcome.WARN
    assert "no CORS rule" in cors.detail
    assert "CORS" in cors.fix
    assert Outcome.FAIL not in outcomes(results).values()


@pytest.mark.asyncio
async def test_a_role_wider_than_the_prefix_root_warns(tmp_path: Path, emulator: Emulator) -> None:
    path = write_config(tmp_path, emulator, role_arn=role_arn(acc.DEV_ROLE), external_id="")
    results = await run_doctor(path)
    reach = results["scope saves: role's own reach"]
    assert reach.outcome is Outcome.WARN
    assert "outside players/" in reach.detail
    assert f"acs:oss:*:*:{BUCKET}/players/*" in reach.fix
    assert Outcome.FAIL not in outcomes(results).values()


@pytest.mark.asyncio
async def test_the_identity_comes_from_the_chain_and_names_its_source(tmp_path: Path) -> None:
    # No AccessKey: the default chain finds the emulator's credentials URI, whose role may
    # assume the dev scope role (the built-in accounts).
    async with running_emulator(EmulatorConfig(data_dir=tmp_path / "data")) as emu:
        path = write_config(tmp_path, emu, role_arn=acc.DEV_ROLE_ARN, external_id="")
        environ = {ECS_METADATA_DISABLED_ENV: "true", CREDENTIALS_URI_ENV: emu.credentials_uri}
        results = await run_doctor(path, environ=environ)
    credentials = results["credentials"]
    assert credentials.outcome is Outcome.PASS
    assert credentials.detail.startswith("from credentials_uri, AccessKeyId STS.")
    assert results["scope saves: AssumeRole"].outcome is Outcome.PASS
    assert results["scope saves: presigned GET"].outcome is Outcome.PASS


@pytest.mark.asyncio
async def test_no_credentials_and_a_bad_config_fail(tmp_path: Path, emulator: Emulator) -> None:
    # No source yields: the metadata service is switched off rather than asked in the cloud.
    results = await run_doctor(
        write_config(tmp_path, emulator), environ={ECS_METADATA_DISABLED_ENV: "true"}
    )
    assert results["credentials"].outcome is Outcome.FAIL
    assert "no source yielded credentials" in results["credentials"].detail
    assert "[identity] source" in results["credentials"].fix
    assert "scope saves: AssumeRole" not in results
    bad = tmp_path / "bad.toml"
    bad.write_text('[scopes.saves]\nbucket = "Not_A_Bucket"\n')
    results = await run_doctor(bad)
    assert list(results) == ["config"]
    assert results["config"].outcome is Outcome.FAIL
    assert "scopes.saves.bucket" in results["config"].fix


@pytest.mark.asyncio
async def test_the_shared_cache_is_checked_when_configured(
    tmp_path: Path, emulator: Emulator, redis_server: RedisServer
) -> None:
    key = base64.b64encode(bytes(32)).decode()
    extra = f'[cache]\nurl = "{redis_server.url}"\n'
    path = write_config(tmp_path, emulator, extra=extra)
    results = await run_doctor(path, environ={**ENVIRON, CACHE_KEYS_ENV: f"k1:{key}"})
    assert results["shared cache (Redis)"].outcome is Outcome.PASS
    # An entry the fleet sealed with a key this replica lacks: named, with the fix.
    other = base64.b64encode(bytes([1] * 32)).decode()
    redis_server.client().set("satchel:entry:abc", b"\x01\x02k9" + bytes(40))
    results = await run_doctor(path, environ={**ENVIRON, CACHE_KEYS_ENV: f"k1:{other}"})
    cache = results["shared cache (Redis)"]
    assert cache.outcome is Outcome.FAIL
    assert "'k9'" in cache.detail
    assert CACHE_KEYS_ENV in cache.fix


@pytest.mark.asyncio
async def test_the_command_exits_non_zero_on_a_failure(
    tmp_path: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_config(tmp_path, emulator)
    assert await asyncio.to_thread(doctor.main, good, ENVIRON) == doctor.EXIT_OK
    assert capsys.readouterr().out.strip().endswith("all checks passed")
    broken = write_config(tmp_path, emulator, external_id="ext-wrong")
    assert await asyncio.to_thread(doctor.main, broken, ENVIRON) == doctor.EXIT_FAILED
    out = capsys.readouterr().out
    assert "[FAIL] scope saves: AssumeRole" in out
    assert "-- fix: " in out
    assert acc.DEV_ACCESS_KEY_SECRET not in out
