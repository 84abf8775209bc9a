"""The emulator's OIDC checks: signature (RS256 only), issuer, audience, times; trust policies."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from satchel_server.emulator import accounts as acc
from satchel_server.emulator.oidc import OidcProvider, OidcTokenError, new_provider, sign_rs256
from satchel_server.emulator.ram_policy import PolicyGrammarError
from satchel_server.emulator.trust_policy import parse_trust_policy

NOW = 1_800_000_000.0
PROVIDER = new_provider(
    acc.DEV_ACCOUNT_ID, "p", "https://issuer.example", (acc.DEV_OIDC_AUDIENCE,), None
)
GOOD = PROVIDER.mint("system:serviceaccount:ns:app", acc.DEV_OIDC_AUDIENCE, NOW, 3600)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**changes: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": PROVIDER.issuer,
        "sub": "system:serviceaccount:ns:app",
        "aud": acc.DEV_OIDC_AUDIENCE,
        "iat": int(NOW),
        "exp": int(NOW + 3600),
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _code(provider: OidcProvider, token: str, now: float = NOW) -> str:
    with pytest.raises(OidcTokenError) as caught:
        provider.verify(token, now)
    return caught.value.code


def _decoded(token: str) -> list[bytes] | None:
    try:
        return [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in token.split(".")]
    except ValueError:
        return None


def test_a_good_token_yields_its_claims() -> None:
    verified = PROVIDER.verify(GOOD, NOW + 10)
    assert verified.subject == "system:serviceaccount:ns:app"
    assert verified.issuer == PROVIDER.issuer


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        (_claims(iss="https://elsewhere.example"), "AuthenticationFail.OIDCToken.IssuerNotMatch"),
        (_claims(aud="other"), "AuthenticationFail.OIDCToken.AudienceNotMatch"),
        (_claims(aud=["other", "more"]), "AuthenticationFail.OIDCToken.AudienceNotMatch"),
        (_claims(exp=int(NOW)), "AuthenticationFail.OIDCToken.Expired"),
        (_claims(nbf=int(NOW + 60)), "AuthenticationFail.OIDCToken.Invalid"),
        (_claims(sub=None), "AuthenticationFail.OIDCToken.Invalid"),
        (_claims(exp="tomorrow"), "AuthenticationFail.OIDCToken.Invalid"),
        # JSON has no NaN or Infinity, and a boolean is no time: none may mean "never expires".
        (_claims(exp=float("nan")), "AuthenticationFail.OIDCToken.Invalid"),
        (_claims(exp=float("inf")), "AuthenticationFail.OIDCToken.Invalid"),
        (_claims(nbf=float("nan")), "AuthenticationFail.OIDCToken.Invalid"),
        (_claims(exp=True), "AuthenticationFail.OIDCToken.Invalid"),
    ],
)
def test_each_claim_is_checked(claims: dict[str, object], code: str) -> None:
    assert _code(PROVIDER, sign_rs256(claims, PROVIDER.key, PROVIDER.kid)) == code


def test_a_list_of_audiences_passes_when_one_is_the_providers() -> None:
    token = sign_rs256(_claims(aud=["x", acc.DEV_OIDC_AUDIENCE]), PROVIDER.key, PROVIDER.kid)
    assert PROVIDER.verify(token, NOW).audience == acc.DEV_OIDC_AUDIENCE


def test_a_token_signed_by_another_key_is_refused() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = sign_rs256(_claims(), other, PROVIDER.kid)
    assert _code(PROVIDER, forged) == "AuthenticationFail.OIDCToken.InvalidSignature"


@pytest.mark.parametrize("alg", ["none", "HS256", "RS512", "ES256"])
def test_only_rs256_is_accepted(alg: str) -> None:
    _, payload, signature = GOOD.split(".")
    header = _b64({"alg": alg, "typ": "JWT", "kid": PROVIDER.kid})
    assert (
        _code(PROVIDER, f"{header}.{payload}.{signature}") == "AuthenticationFail.OIDCToken.Invalid"
    )


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0, max_value=len(GOOD) - 1), char=st.sampled_from("AQgw-_x."))
def test_any_changed_character_is_refused(position: int, char: str) -> None:
    changed = GOOD[:position] + char + GOOD[position + 1 :]
    if _decoded(changed) == _decoded(GOOD):
        return  # a last base64 character's unused low bits: the same token
    with pytest.raises(OidcTokenError):
        PROVIDER.verify(changed, NOW)


@given(st.text(max_size=200))
def test_garbage_is_refused_never_a_crash(token: str) -> None:
    with pytest.raises(OidcTokenError):
        PROVIDER.verify(token, NOW)


TRUST = parse_trust_policy(acc.DEV_IDENTITY_TRUST)
CONTEXT = {
    "oidc:iss": acc.DEV_OIDC_ISSUER,
    "oidc:aud": acc.DEV_OIDC_AUDIENCE,
    "oidc:sub": acc.DEV_OIDC_SUBJECT,
}


@pytest.mark.parametrize("key", sorted(CONTEXT))
def test_the_trust_policy_needs_every_oidc_condition(key: str) -> None:
    assert TRUST.trusts("Federated", acc.DEV_OIDC_PROVIDER_ARN, CONTEXT)
    assert not TRUST.trusts("Federated", acc.DEV_OIDC_PROVIDER_ARN, {**CONTEXT, key: "other"})
    missing = {k: v for k, v in CONTEXT.items() if k != key}
    assert not TRUST.trusts("Federated", acc.DEV_OIDC_PROVIDER_ARN, missing)


def test_the_trust_policy_names_its_principals_only() -> None:
    other = acc.DEV_OIDC_PROVIDER_ARN.replace("satchel-dev-oidc", "other")
    assert not TRUST.trusts("Federated", other, CONTEXT)
    assert TRUST.trusts("Service", "ecs.aliyuncs.com")
    assert not TRUST.trusts("RAM", f"acs:ram::{acc.DEV_ACCOUNT_ID}:root")


def test_an_explicit_deny_wins() -> None:
    allow = (
        '{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"Service":"ecs.aliyuncs.com"}}'
    )
    deny = allow.replace("Allow", "Deny")
    policy = parse_trust_policy(f'{{"Version":"1","Statement":[{allow},{deny}]}}')
    assert not policy.trusts("Service", "ecs.aliyuncs.com")


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"Version":"2","Statement":[]}',
        '{"Version":"1","Statement":[]}',
        '{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:*","Principal":{"RAM":"x"}}]}',
        '{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{}}]}',
        '{"Version":"1","Statement":[{"Effect":"Maybe","Action":"sts:AssumeRole",'
        '"Principal":{"RAM":"x"}}]}',
        '{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",'
        '"Principal":{"Human":"x"}}]}',
        '{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",'
        '"Principal":{"RAM":"x"},"Condition":{"Nope":{"a":"b"}}}]}',
    ],
)
def test_a_malformed_trust_policy_is_a_grammar_error(text: str) -> None:
    with pytest.raises(PolicyGrammarError):
        parse_trust_policy(text)
