"""Presigner and scope signers: the lifetime promise, SDK equality, refresh ahead."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.fakes import FakeClock, ScriptedSts
from support.scopes import make_scope
from vectors.sdk_reference import oss2_sign_url, oss_v2_presign

from satchel_server.config import AccessKey
from satchel_server.credentials.budget import TokenBucket
from satchel_server.errors import InvalidArgument, UpstreamUnavailable
from satchel_server.presigning.presigner import Presigner
from satchel_server.presigning.signing_credentials import (
    HeldCredentials,
    ScopeRefresher,
    ScopeSigningCredentials,
)
from satchel_server.rules.scopes import validate_presign_request
from satchel_server.signing import SigningCredentials
from satchel_server.vocabulary import HttpMethod

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
TOKEN = "CAIS" + "t" * 796  # as long as a real STS security token
CREDS = SigningCredentials("STS.NUgYrLnoC36mbNdzvEdX", "sts-secret-value", TOKEN)
SCOPE = make_scope()
KEY = AccessKey("LTAI-ram-user", "ram-secret")


class FixedRefresher(ScopeRefresher):
    """A ScopeRefresher whose credentials are set by the test, never fetched."""

    def __init__(self, scope, signer: HeldCredentials | None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(scope, ScriptedSts(FakeClock()), TokenBucket(1), KEY)
        self._current = signer


def presigner_for(scope, expires_in: float | None, clock=lambda: NOW) -> Presigner:  # type: ignore[no-untyped-def]
    signer = HeldCredentials(CREDS, NOW + timedelta(seconds=expires_in)) if expires_in else None
    signers = ScopeSigningCredentials({scope.name: FixedRefresher(scope, signer)})
    return Presigner({scope.name: scope}, signers, clock)


def request(scope=SCOPE, **overrides):  # type: ignore[no-untyped-def]
    fields = {
        "scope_name": "",
        "player_id": "p1",
        "key": "saves/slot 1.dat",
        "method": HttpMethod.GET,
        "expires_seconds": None,
        "content_type": "",
        "max_size": 0,
        "forbid_overwrite": False,
    }
    fields.update(overrides)
    return validate_presign_request({scope.name: scope}, **fields)  # type: ignore[arg-type]


def test_url_lives_as_asked_when_the_signer_has_time_to_spare() -> None:
    presigned = presigner_for(SCOPE, 3600).presign(request(expires_seconds=900))
    assert presigned.expiration == NOW + timedelta(seconds=900)
    assert "x-oss-expires=900" in presigned.url


def test_url_is_clamped_to_the_signers_life_minus_the_margin() -> None:
    presigned = presigner_for(SCOPE, 600).presign(request(expires_seconds=900))
    assert presigned.expiration == NOW + timedelta(seconds=540)
    assert "x-oss-expires=540" in presigned.url


def test_no_url_is_handed_out_already_dead() -> None:
    with pytest.raises(UpstreamUnavailable):
        presigner_for(SCOPE, 60).presign(request())


def test_no_signer_yet_is_unavailable() -> None:
    with pytest.raises(UpstreamUnavailable, match="not ready"):
        presigner_for(SCOPE, None).presign(request())


def test_the_ram_users_own_key_signs_for_the_full_lifetime() -> None:
    scope = make_scope(sign_with_access_key=True)
    signers = ScopeSigningCredentials(
        {scope.name: ScopeRefresher(scope, ScriptedSts(FakeClock()), TokenBucket(1), KEY)}
    )
    presigned = Presigner({scope.name: scope}, signers, lambda: NOW).presign(
        request(scope, expires_seconds=1800)
    )
    assert presigned.expiration == NOW + timedelta(seconds=1800)
    assert "x-oss-credential=LTAI-ram-user%2F" in presigned.url
    assert "security-token" not in presigned.url


@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD"])
@pytest.mark.parametrize("addressing", ["virtual-hosted", "path"])
def test_v4_urls_equal_what_the_official_sdks_sign(method: str, addressing: str) -> None:
    scope = make_scope(addressing=addressing)
    key = "saves/slot 1+2=3&x?#%~*.dat"
    put = method == "PUT"
    ours = presigner_for(scope, 3600).presign(
        request(
            scope,
            key=key,
            method=HttpMethod(method),
            expires_seconds=900,
            content_length=1234 if put else None,
        )
    )
    common = {
        "ak": CREDS.access_key_id,
        "sk": CREDS.access_key_secret,
        "token": TOKEN,
        "endpoint": scope.endpoint,
        "bucket": scope.bucket,
        "key": f"players/p1/{key}",
        "method": method,
        "expires": 900,
        "now": NOW,
        "region": scope.region,
        "path_style": addressing == "path",
    }
    # A PUT always signs a Content-Type (application/octet-stream by default), and its
    # Content-Length as an additional header, which alibabacloud-oss-v2's presign cannot
    # (its Config.additional_headers never reaches its signing context): oss2 referees it.
    headers = {"Content-Type": "application/octet-stream", "Content-Length": "1234"} if put else {}
    additional = ["content-length"] if put else None
    if not put:
        assert ours.url == oss_v2_presign(version="v4", **common).url
    theirs = urlsplit(
        oss2_sign_url(version="v4", headers=headers, additional_headers=additional, **common)
    )
    mine = urlsplit(ours.url)
    assert (mine.netloc, mine.path) == (theirs.netloc, theirs.path)
    assert sorted(parse_qsl(mine.query)) == sorted(parse_qsl(theirs.query))


def test_each_url_is_signed_with_the_calls_time_and_the_credentials_held_then() -> None:
    times = [NOW]
    signer = FixedRefresher(SCOPE, HeldCredentials(CREDS, NOW + timedelta(hours=1)))
    presigner = Presigner(
        {SCOPE.name: SCOPE}, ScopeSigningCredentials({SCOPE.name: signer}), lambda: times[0]
    )
    asked = request(expires_seconds=900)
    first = presigner.presign(asked)
    times[0] = NOW + timedelta(seconds=7)
    renewed = SigningCredentials("STS.renewed", "renewed-secret", "renewed-token")
    signer._current = HeldCredentials(renewed, NOW + timedelta(hours=1))
    second = presigner.presign(asked)
    assert second.url != first.url
    assert second.expires_at == first.expires_at + 7
    assert "x-oss-credential=STS.renewed%2F" in second.url
    assert "x-oss-security-token=renewed-token" in second.url


def test_v1_urls_equal_what_oss2_signs() -> None:
    scope = make_scope(presign_signature="v1")
    ours = presigner_for(scope, 3600).presign(request(scope, expires_seconds=900))
    theirs = oss2_sign_url(
        version="v1",
        ak=CREDS.access_key_id,
        sk=CREDS.access_key_secret,
        token=TOKEN,
        endpoint=scope.endpoint,
        bucket=scope.bucket,
        key="players/p1/saves/slot 1.dat",
        method="GET",
        expires=900,
        now=NOW,
    )
    assert sorted(parse_qsl(urlsplit(ours.url).query)) == sorted(parse_qsl(urlsplit(theirs).query))


def test_put_signs_the_headers_the_client_must_send() -> None:
    presigned = presigner_for(SCOPE, 3600).presign(
        request(
            method=HttpMethod.PUT, content_type="image/png", forbid_overwrite=True, content_length=7
        )
    )
    assert presigned.headers == {
        "Content-Type": "image/png",
        "Content-Length": "7",
        "x-oss-forbid-overwrite": "true",
    }
    assert "x-oss-additional-headers=content-length&" in presigned.url
    plain = presigner_for(SCOPE, 3600).presign(request(method=HttpMethod.PUT, content_length=0))
    assert plain.headers == {"Content-Type": "application/octet-stream", "Content-Length": "0"}


def test_post_form_caps_size_and_pins_the_key() -> None:
    presigned = presigner_for(SCOPE, 3600).presign(
        request(method=HttpMethod.POST, max_size=1000, content_type="image/png")
    )
    assert presigned.url == "https://game-saves.oss-cn-hangzhou.aliyuncs.com/"
    fields = presigned.form_fields
    assert fields["key"] == "players/p1/saves/slot 1.dat"
    assert fields["Content-Type"] == "image/png"
    assert fields["x-oss-security-token"] == TOKEN
    assert fields["success_action_status"] == "204"
    document = json.loads(base64.b64decode(fields["policy"]))
    assert ["content-length-range", 0, 1000] in document["conditions"]
    assert {"key": "players/p1/saves/slot 1.dat"} in document["conditions"] or [
        "eq",
        "$key",
        "players/p1/saves/slot 1.dat",
    ] in document["conditions"]


def test_repr_of_a_presigned_result_hides_url_and_form() -> None:
    presigned = presigner_for(SCOPE, 3600).presign(request(method=HttpMethod.POST))
    assert TOKEN not in repr(presigned)
    assert "Signature" not in repr(presigned)


safe_keys = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\\"),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(
    player=st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z"),
    key=safe_keys,
    method=st.sampled_from([HttpMethod.GET, HttpMethod.PUT, HttpMethod.HEAD, HttpMethod.DELETE]),
)
def test_every_accepted_request_signs_a_resource_inside_the_players_folder(
    player: str, key: str, method: HttpMethod
) -> None:
    try:
        accepted = request(player_id=player, key=key, method=method)
    except InvalidArgument:
        return
    url = presigner_for(SCOPE, 3600).presign(accepted).url
    path = unquote(urlsplit(url).path)
    assert path == f"/players/{player}/{key}"
    assert ".." not in path.split("/")


@pytest.mark.asyncio
async def test_signer_refreshes_ahead_of_need_and_never_lists() -> None:
    clock = FakeClock()
    sts = ScriptedSts(clock, delay=0)
    scope = dataclasses.replace(SCOPE, signer_ttl_seconds=3600, presign_expires_max_seconds=1800)
    signer = ScopeRefresher(scope, sts, TokenBucket(100), KEY, clock)
    await signer.refresh()
    (call,) = sts.calls
    assert call.duration_seconds == 3600
    assert '"Resource":["acs:oss:*:*:game-saves/players/*"]' in call.policy
    assert "ListObjects" not in call.policy
    # Due once remaining life < longest URL (1800) + margin (60): after 1740 s.
    assert signer.refresh_due_in() == pytest.approx(1740)
    clock.now += timedelta(seconds=1741)
    runner = asyncio.create_task(signer.run())
    for _ in range(50):
        await asyncio.sleep(0)
        if signer.refresh_due_in() > 0:  # the second refresh has landed
            break
    runner.cancel()
    assert len(sts.calls) == 2
    assert signer.refresh_due_in() == pytest.approx(1740)
