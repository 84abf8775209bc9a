"""Accounts from TOML and the built-in dev set; sessions keep secrets out of repr."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satchel_server.emulator import accounts as acc

TOML = """
[[accounts]]
id = "111"
[[accounts.users]]
name = "alice"
access_key_id = "AK1"
access_key_secret = "SK1"
[[accounts.users]]
name = "mallory"
access_key_id = "AK2"
access_key_secret = "SK2"
[[accounts.roles]]
name = "Files"
trusted_users = ["alice"]
max_session_duration = 7200
external_id = "ext"
policies = ['{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:*","Resource":"*"}]}']
[[accounts.buckets]]
name = "b1"
region = "cn-beijing"
"""


def test_load_toml(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(TOML)
    directory = acc.load_directory(path)
    alice = directory.user_by_key("AK1")
    mallory = directory.user_by_key("AK2")
    assert alice is not None
    assert mallory is not None
    role = directory.role("111", "files")
    assert role is not None
    assert role.arn == "acs:ram::111:role/files"
    assert role.max_session_duration == 7200
    assert role.external_id == "ext"
    assert role.trusts(alice)
    assert not role.trusts(mallory)
    bucket = directory.bucket("b1")
    assert bucket is not None
    assert bucket.region == "cn-beijing"
    assert "SK1" not in repr(alice)
    assert "ext" not in repr(role)


@pytest.mark.parametrize(
    "text",
    [
        "accounts = 1",
        '[[accounts]]\nid = "abc"',
        '[[accounts]]\nid = "1"\n[[accounts.users]]\nname = "x"',
        '[[accounts]]\nid = "1"\n[[accounts.roles]]\nname = "r"\npolicies = ["{}"]',
        "not toml [",
        # CORS rules: origins and methods are required, lists of strings, max age an integer.
        '[[accounts]]\nid = "1"\n[[accounts.buckets]]\nname = "b1b"\ncors = 1',
        '[[accounts]]\nid = "1"\n[[accounts.buckets]]\nname = "b1b"\n'
        '[[accounts.buckets.cors]]\nallowed_methods = ["GET"]',
        '[[accounts]]\nid = "1"\n[[accounts.buckets]]\nname = "b1b"\n'
        '[[accounts.buckets.cors]]\nallowed_origins = "*"\nallowed_methods = ["GET"]',
        '[[accounts]]\nid = "1"\n[[accounts.buckets]]\nname = "b1b"\n'
        '[[accounts.buckets.cors]]\nallowed_origins = ["*"]\nallowed_methods = ["GET"]\n'
        'max_age_seconds = "10"',
    ],
)
def test_bad_config(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(acc.AccountsConfigError):
        acc.load_directory(path)


def test_dev_directory_and_sessions() -> None:
    directory = acc.load_directory()
    user = directory.user_by_key(acc.DEV_ACCESS_KEY_ID)
    assert user is not None
    parsed = acc.parse_role_arn(acc.DEV_ROLE_ARN)
    assert parsed is not None
    role = directory.role(*parsed)
    assert role is not None
    assert role.trusts(user)
    assert directory.bucket(acc.DEV_BUCKET) is not None
    session = directory.issue_session(role, "player-1", None, expiration=100.0, now=0.0)
    assert session.access_key_id.startswith("STS.")
    assert directory.session_by_key(session.access_key_id) is session
    assert session.access_key_secret not in repr(session)
    assert session.security_token not in repr(session)
    assert session.arn == f"{role.arn}/player-1"
    # Long-expired sessions are forgotten when the next one is issued.
    directory.issue_session(role, "player-2", None, expiration=200_000.0, now=100_000.0)
    assert directory.session_by_key(session.access_key_id) is None


@pytest.mark.parametrize(
    "arn", ["acs:ram::abc:role/x", "acs:ram:1:role/x", "acs:ram::1:role/", "acs:ram::1:user/x"]
)
def test_bad_role_arns(arn: str) -> None:
    assert acc.parse_role_arn(arn) is None


def test_bucket_cors_rules_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(
        '[[accounts]]\nid = "1"\n[[accounts.buckets]]\nname = "with-cors"\n'
        '[[accounts.buckets.cors]]\nallowed_origins = ["https://game.example"]\n'
        'allowed_methods = ["GET", "PUT"]\nmax_age_seconds = 60\n'
        '[[accounts.buckets]]\nname = "without"\n'
    )
    directory = acc.load_directory(path)
    with_cors, without = directory.bucket("with-cors"), directory.bucket("without")
    assert with_cors is not None
    assert without is not None
    assert with_cors.cors == (acc.CorsRule(("https://game.example",), ("GET", "PUT"), (), (), 60),)
    assert without.cors == ()


_TOML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


@given(
    rule=st.dictionaries(
        st.sampled_from(
            [
                "allowed_origins",
                "allowed_methods",
                "allowed_headers",
                "expose_headers",
                "max_age_seconds",
                "other",
            ]
        ),
        _TOML_VALUES,
    )
)
def test_any_cors_rule_parses_or_is_refused_by_name(rule: dict[str, object]) -> None:
    document = {"accounts": [{"id": "1", "buckets": [{"name": "b1b", "cors": [rule]}]}]}
    try:
        directory = acc.directory_from_mapping(document)
    except acc.AccountsConfigError as exc:
        refused = str(exc)
    else:
        refused = ""
    if refused:
        assert "cors" in refused  # the message names the table at fault
        return
    bucket = directory.bucket("b1b")
    assert bucket is not None
    (parsed,) = bucket.cors
    assert parsed.allowed_origins
    assert parsed.allowed_methods
    assert all(isinstance(origin, str) for origin in parsed.allowed_origins)
