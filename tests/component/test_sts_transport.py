"""The STS transport against the emulator and against misbehaving peers."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import random
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from component.emulator_fixtures import emulator, player_policy
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from satchel_server.config import StsSettings
from satchel_server.credentials.broker import AssumeRoleRequest
from satchel_server.credentials.budget import TokenBucket
from satchel_server.credentials.identity import RefreshingIdentity
from satchel_server.emulator import accounts as acc
from satchel_server.emulator.faults import FaultPlan
from satchel_server.emulator.runner import Emulator
from satchel_server.errors import UpstreamBug, UpstreamRejected, UpstreamUnavailable
from satchel_server.sts.client import AliyunStsClient
from satchel_server.sts.http import new_session

__all__ = ["emulator"]

DEV_KEY = RefreshingIdentity.of_key(acc.DEV_ACCESS_KEY_ID, acc.DEV_ACCESS_KEY_SECRET)
REQUEST = AssumeRoleRequest(
    role_arn=acc.DEV_ROLE_ARN,
    role_session_name="satchel-p1",
    policy=player_policy("p1"),
    duration_seconds=900,
)


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with new_session() as opened:
        yield opened


def client(
    session: aiohttp.ClientSession,
    endpoint: str,
    retry_budget: TokenBucket | None = None,
    **settings: object,
) -> AliyunStsClient:
    return AliyunStsClient(
        session,
        StsSettings(endpoint=endpoint, **settings),  # type: ignore[arg-type]
        DEV_KEY,
        rng=random.Random(7),
        retry_budget=retry_budget,
    )


def deadline(seconds: float = 5) -> float:
    return asyncio.get_running_loop().time() + seconds


@pytest.mark.asyncio
@pytest.mark.parametrize("signature", ["rpc-v1", "acs3"])
async def test_both_signatures_are_accepted_by_the_emulator(
    emulator: Emulator, session: aiohttp.ClientSession, signature: str
) -> None:
    sts = client(session, emulator.sts_url, signature=signature)
    result = await sts.assume_role(REQUEST, deadline=deadline())
    assert result.credentials.access_key_id.startswith("STS.")
    assert result.request_id
    remaining = result.credentials.remaining_seconds(dt.datetime.now(dt.UTC))
    assert 880 < remaining <= 900


@pytest.mark.asyncio
async def test_a_reused_nonce_is_retried_with_a_fresh_one(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    nonces = itertools.chain(["same", "same"], iter(lambda: uuid.uuid4().hex, None))
    sts = AliyunStsClient(
        session, StsSettings(endpoint=emulator.sts_url), DEV_KEY, nonce=lambda: next(nonces)
    )
    await sts.assume_role(REQUEST, deadline=deadline())
    before = emulator.counters.assume_role_calls
    await sts.assume_role(REQUEST, deadline=deadline())
    assert emulator.counters.assume_role_calls - before == 2


@pytest.mark.asyncio
async def test_throttling_is_tried_three_times_then_unavailable(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    emulator.faults.set("sts", FaultPlan(throttle=True))
    before = emulator.counters.assume_role_calls
    with pytest.raises(UpstreamUnavailable, match="Throttling"):
        await client(session, emulator.sts_url).assume_role(REQUEST, deadline=deadline())
    assert emulator.counters.assume_role_calls - before == 3


@pytest.mark.asyncio
async def test_each_retry_takes_a_token_from_the_sts_budget(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    emulator.faults.set("sts", FaultPlan(throttle=True))
    budget = TokenBucket(0.001, burst=5)  # no refill within the test
    sts = client(session, emulator.sts_url, retry_budget=budget)
    with pytest.raises(UpstreamUnavailable, match="Throttling"):
        await sts.assume_role(REQUEST, deadline=deadline())
    assert budget.available == pytest.approx(3, abs=0.01)  # the first attempt's is the caller's


@pytest.mark.asyncio
async def test_no_retry_is_sent_when_the_budget_has_no_token_in_time(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    emulator.faults.set("sts", FaultPlan(throttle=True))
    budget = TokenBucket(0.01, burst=1)
    await budget.acquire(0)  # spent: the next token is 100 s away
    sts = client(session, emulator.sts_url, retry_budget=budget)
    before = emulator.counters.assume_role_calls
    with pytest.raises(UpstreamUnavailable, match="Throttling"):
        await sts.assume_role(REQUEST, deadline=deadline())
    assert emulator.counters.assume_role_calls - before == 1


@pytest.mark.asyncio
async def test_grammar_errors_are_not_retried(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    bad = AssumeRoleRequest(acc.DEV_ROLE_ARN, "satchel-p1", '{"Version":"1"', 900)
    before = emulator.counters.assume_role_calls
    with pytest.raises(UpstreamBug, match=r"InvalidParameter\.PolicyGrammar"):
        await client(session, emulator.sts_url).assume_role(bad, deadline=deadline())
    assert emulator.counters.assume_role_calls - before == 1


@pytest.mark.asyncio
async def test_wrong_secret_and_unknown_role_are_for_operators(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    wrong = AliyunStsClient(
        session,
        StsSettings(endpoint=emulator.sts_url),
        RefreshingIdentity.of_key(acc.DEV_ACCESS_KEY_ID, "nope"),
    )
    with pytest.raises(UpstreamRejected) as caught:
        await wrong.assume_role(REQUEST, deadline=deadline())
    assert caught.value.code == "SignatureDoesNotMatch"
    assert "nope" not in str(caught.value)
    missing = AssumeRoleRequest(
        f"acs:ram::{acc.DEV_ACCOUNT_ID}:role/absent", "s-1", REQUEST.policy, 900
    )
    with pytest.raises(UpstreamRejected) as caught:
        await client(session, emulator.sts_url).assume_role(missing, deadline=deadline())
    assert caught.value.code == "EntityNotExist.Role"


@pytest.mark.asyncio
async def test_sustained_failure_spends_the_retry_quota_and_fails_fast(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    emulator.faults.set("sts", FaultPlan(status=503))
    sts = client(session, emulator.sts_url)
    sts._quota.available = 5  # one retry's worth left
    before = emulator.counters.assume_role_calls
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await sts.assume_role(REQUEST, deadline=deadline())
    # 2 attempts for the first call (one retry), then 1 each: no retries left.
    assert emulator.counters.assume_role_calls - before == 4
    emulator.faults.clear()
    await sts.assume_role(REQUEST, deadline=deadline())
    assert sts._quota.available == 1  # a success pays back


async def _serve(
    app: web.Application, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest.mark.asyncio
async def test_a_redirect_is_not_followed(session: aiohttp.ClientSession) -> None:
    hits: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        hits.append(request.path)
        raise web.HTTPFound("/elsewhere")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    runner, port = await _serve(app)
    try:
        with pytest.raises(UpstreamUnavailable, match="redirect"):
            await client(session, f"http://127.0.0.1:{port}").assume_role(
                REQUEST, deadline=deadline()
            )
    finally:
        await runner.cleanup()
    assert hits == ["/"]


@pytest.mark.asyncio
async def test_connection_refused_is_unavailable(session: aiohttp.ClientSession) -> None:
    runner, port = await _serve(web.Application())
    await runner.cleanup()  # the port is now closed
    with pytest.raises(UpstreamUnavailable, match="cannot reach STS"):
        await client(session, f"http://127.0.0.1:{port}").assume_role(REQUEST, deadline=deadline())


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


@pytest.mark.asyncio
async def test_an_untrusted_certificate_is_refused_without_fallback(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    hits: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"Credentials": {}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner, port = await _serve(app, _self_signed(tmp_path))
    try:
        with pytest.raises(UpstreamUnavailable, match="TLS"):
            await client(session, f"https://127.0.0.1:{port}").assume_role(
                REQUEST, deadline=deadline()
            )
    finally:
        await runner.cleanup()
    assert hits == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "body",
    [
        {"RequestId": "r"},
        {
            "RequestId": "r",
            "Credentials": {"AccessKeyId": "STS.x", "AccessKeySecret": "s", "SecurityToken": "t"},
        },
        {
            "RequestId": "r",
            "Credentials": {
                "AccessKeyId": "STS.x",
                "AccessKeySecret": "s",
                "SecurityToken": "t",
                "Expiration": "tomorrow",
            },
        },
        {
            "RequestId": "r",
            "Credentials": {
                "AccessKeyId": "STS.x",
                "AccessKeySecret": "s",
                "SecurityToken": "t",
                "Expiration": "2001-01-01T00:00:00Z",
            },
        },
        {
            "RequestId": "r",
            "Credentials": {
                "AccessKeyId": "",
                "AccessKeySecret": "s",
                "SecurityToken": "t",
                "Expiration": "2999-01-01T00:00:00Z",
            },
        },
        ["not", "an", "object"],
    ],
    ids=["no-credentials", "no-expiration", "bad-expiration", "past", "empty-id", "array"],
)
async def test_unusable_200_answers_are_errors_never_partial_credentials(
    session: aiohttp.ClientSession, body: object
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=json.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner, port = await _serve(app)
    try:
        with pytest.raises(UpstreamUnavailable):
            await client(session, f"http://127.0.0.1:{port}").assume_role(
                REQUEST, deadline=deadline()
            )
    finally:
        await runner.cleanup()
