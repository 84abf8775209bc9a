"""Authentication (key, certificate, both) and authorisation (scope, grants, player)."""

from __future__ import annotations

from typing import Any

import pytest
from support.scopes import make_scope

from satchel_server.access.bearer import generate_key
from satchel_server.access.callers import Authenticator, Authorizer, Caller
from satchel_server.config import CallerSettings, GrantSettings
from satchel_server.errors import PermissionDenied, Unauthenticated
from satchel_server.rules.scopes import validate_presign_request, validate_token_request
from satchel_server.vocabulary import HttpMethod, PlayerPermission

EU_KEY, US_KEY = generate_key(), generate_key()
EU_URI = "spiffe://studio/game-eu"
US_DNS = "game-us.internal"


def caller(name: str, **fields: Any) -> CallerSettings:
    return CallerSettings(name=name, **fields)


CALLERS = {
    "eu": caller(
        "eu",
        keys=(EU_KEY.config_entry,),
        cert_sans=(EU_URI,),
        scopes={
            "saves": GrantSettings(
                scope="saves",
                permissions=("read", "write"),
                methods=("GET", "PUT"),
                player_id_pattern=r"eu-\d+",
            )
        },
    ),
    "us": caller(
        "us",
        keys=(US_KEY.config_entry,),
        cert_sans=(US_DNS,),
        scopes={"saves": GrantSettings(scope="saves", permissions=("read",))},
    ),
}
authenticator = Authenticator(CALLERS)


def bearer(key: str) -> list[str]:
    return [f"Bearer {key}"]


def test_a_bearer_key_names_its_caller_by_key_id() -> None:
    assert authenticator.identify(bearer(EU_KEY.key), []) == Caller("eu", "key", EU_KEY.key_id)
    assert authenticator.identify([f"bearer  {US_KEY.key} "], []) == Caller(
        "us", "key", US_KEY.key_id
    )


@pytest.mark.parametrize(
    ("authorization", "sans", "reason"),
    [
        ([], [], "no bearer key or SAN"),
        (bearer(generate_key().key), [], "unknown or retired key id"),
        (bearer(EU_KEY.key[:-1] + ("0" if EU_KEY.key[-1] != "0" else "1")), [], "does not match"),
        ([f"Basic {EU_KEY.key}"], [], "not a bearer key"),
        ([EU_KEY.key], [], "not a bearer key"),
        (bearer(EU_KEY.key) * 2, [], "several authorization headers"),
        ([], ["spiffe://studio/unknown"], "certificate names no caller"),
        ([], [EU_URI, US_DNS], "certificate names several callers"),
        (bearer(US_KEY.key), [EU_URI], "key names 'us', certificate 'eu'"),
    ],
    ids=[
        "nothing",
        "unknown-key",
        "wrong-secret",
        "basic-scheme",
        "no-scheme",
        "two-headers",
        "unmapped-cert",
        "ambiguous-cert",
        "key-and-cert-disagree",
    ],
)
def test_bad_or_missing_credentials_are_unauthenticated(
    authorization: list[str], sans: list[str], reason: str
) -> None:
    with pytest.raises(Unauthenticated, match=reason):
        authenticator.identify(authorization, sans)


def test_a_mapped_certificate_san_names_its_caller() -> None:
    assert authenticator.identify([], [EU_URI]) == Caller("eu", "cert", EU_URI)
    assert authenticator.identify([], ["other.internal", US_DNS]) == Caller("us", "cert", US_DNS)


def test_a_key_wins_over_an_unmapped_certificate_and_agrees_with_a_mapped_one() -> None:
    assert authenticator.identify(bearer(EU_KEY.key), ["nobody.internal"]).name == "eu"
    assert authenticator.identify(bearer(EU_KEY.key), [EU_URI]).via == "key"


def test_without_callers_everyone_is_anonymous() -> None:
    open_door = Authenticator({})
    assert open_door.required is False
    assert open_door.identify([], []) is None
    assert open_door.identify(["Bearer junk"], []) is None


SCOPES = {"saves": make_scope(), "replays": make_scope(name="replays", default=False)}
EU = Caller("eu", "key", EU_KEY.key_id)
authorizer = Authorizer(CALLERS)


def token(scope: str = "saves", player: str = "eu-1", *permissions: PlayerPermission) -> Any:
    return validate_token_request(
        SCOPES, scope_name=scope, player_id=player, permissions=permissions, ttl_seconds=None
    )


def presign(method: HttpMethod, player: str = "eu-1", scope: str = "saves") -> Any:
    return validate_presign_request(
        SCOPES,
        scope_name=scope,
        player_id=player,
        key="save.dat",
        method=method,
        expires_seconds=None,
        content_type="",
        max_size=0,
        forbid_overwrite=False,
        content_length=10 if method is HttpMethod.PUT else None,
    )


def test_requests_inside_the_grant_are_allowed() -> None:
    authorizer.check(EU, token("saves", "eu-1", PlayerPermission.READ, PlayerPermission.WRITE))
    authorizer.check(EU, token("saves", "eu-7"))  # the scope's default permissions: read
    authorizer.check(EU, presign(HttpMethod.GET))
    authorizer.check(EU, presign(HttpMethod.PUT, "eu-99"))


@pytest.mark.parametrize(
    ("request_", "rule"),
    [
        (token("replays"), "may not use scope 'replays'"),
        (token("saves", "eu-1", PlayerPermission.DELETE), "may not ask for 'delete'"),
        (
            token("saves", "eu-1", PlayerPermission.READ, PlayerPermission.LIST),
            "may not ask for 'list'",
        ),
        (token("saves", "us-1"), "may not act for this player id"),
        (token("saves", "eu-1x"), "may not act for this player id"),
        (presign(HttpMethod.DELETE), "may not presign DELETE"),
        (presign(HttpMethod.POST), "may not presign POST"),
        (presign(HttpMethod.GET, "us-1"), "may not act for this player id"),
    ],
)
def test_anything_outside_the_grant_is_permission_denied(request_: Any, rule: str) -> None:
    with pytest.raises(PermissionDenied, match=rule):
        authorizer.check(EU, request_)


def test_methods_are_not_implied_by_permissions() -> None:
    us = Caller("us", "key", US_KEY.key_id)
    authorizer.check(us, token("saves", "anyone"))
    with pytest.raises(PermissionDenied, match="may not presign GET"):
        authorizer.check(us, presign(HttpMethod.GET, "anyone"))


def test_a_call_without_identity_is_refused_when_callers_are_configured() -> None:
    with pytest.raises(Unauthenticated):
        authorizer.check(None, token())
    Authorizer({}).check(None, token())  # running open: nothing to check
