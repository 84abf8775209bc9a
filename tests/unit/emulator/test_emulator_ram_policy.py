"""RAM policy grammar and evaluation (role ∩ session, explicit Deny wins, default deny)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satchel_server.emulator.ram_policy import (
    Decision,
    PolicyGrammarError,
    Request,
    evaluate,
    is_allowed,
    parse_policy,
)

BUCKET = "b"


def _doc(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements)})


def _player_policy(player: str) -> str:
    return _doc(
        {
            "Effect": "Allow",
            "Action": ["oss:GetObject", "oss:PutObject"],
            "Resource": [f"acs:oss:*:*:{BUCKET}/players/{player}/*"],
        },
        {
            "Effect": "Allow",
            "Action": "oss:ListObjects",
            "Resource": f"acs:oss:*:*:{BUCKET}",
            "Condition": {
                "StringLike": {"oss:Prefix": [f"players/{player}/", f"players/{player}/*"]}
            },
        },
    )


ROLE_ALL = parse_policy(
    _doc({"Effect": "Allow", "Action": "oss:*", "Resource": ["acs:oss:*:*:b", "acs:oss:*:*:b/*"]})
)


def _obj(action: str, key: str) -> Request:
    return Request(action, f"acs:oss:*:*:{BUCKET}/{key}")


def _list(prefix: str | None) -> Request:
    ctx = {} if prefix is None else {"oss:Prefix": prefix}
    return Request("oss:ListObjects", f"acs:oss:*:*:{BUCKET}", ctx)


@pytest.mark.parametrize(
    ("request_", "allowed"),
    [
        (_obj("oss:GetObject", "players/12/x"), True),
        (_obj("oss:PutObject", "players/12/a/b"), True),
        (_obj("oss:DeleteObject", "players/12/x"), False),
        (_obj("oss:GetObject", "players/123/x"), False),
        (_obj("oss:GetObject", "players/12"), False),
        (_obj("oss:getobject", "players/12/x"), True),
        (_list("players/12/"), True),
        (_list("players/12/sub/"), True),
        (_list("players/1"), False),
        (_list("players/123/"), False),
        (_list(None), False),
    ],
)
def test_player_policy(request_: Request, allowed: bool) -> None:
    session = parse_policy(_player_policy("12"))
    assert is_allowed([ROLE_ALL], session, request_) is allowed


def test_role_limits_session() -> None:
    role = parse_policy(
        _doc({"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"})
    )
    session = parse_policy(_player_policy("12"))
    assert is_allowed([role], session, _obj("oss:GetObject", "players/12/x"))
    assert not is_allowed([role], session, _obj("oss:PutObject", "players/12/x"))


def test_explicit_deny_in_role_survives_session_allow() -> None:
    role = parse_policy(
        _doc(
            {"Effect": "Allow", "Action": "oss:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "oss:PutObject", "Resource": "acs:oss:*:*:b/players/12/*"},
        )
    )
    session = parse_policy(_player_policy("12"))
    assert not is_allowed([role], session, _obj("oss:PutObject", "players/12/x"))
    assert is_allowed([role], session, _obj("oss:GetObject", "players/12/x"))


def test_no_session_policy_means_role_only() -> None:
    assert is_allowed([ROLE_ALL], None, _obj("oss:DeleteObject", "anything"))
    assert not is_allowed([], None, _obj("oss:GetObject", "anything"))


def test_not_action_and_not_resource() -> None:
    policy = parse_policy(
        _doc({"Effect": "Allow", "NotAction": "oss:DeleteObject", "NotResource": "acs:oss:*:*:b/x"})
    )
    assert evaluate([policy], _obj("oss:GetObject", "y")) is Decision.ALLOW
    assert evaluate([policy], _obj("oss:DeleteObject", "y")) is Decision.NOT_APPLICABLE
    assert evaluate([policy], _obj("oss:GetObject", "x")) is Decision.NOT_APPLICABLE


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"Statement": []}',
        '{"Version": "2", "Statement": [{"Effect":"Allow","Action":"*","Resource":"*"}]}',
        '{"Version": "1", "Statement": []}',
        '{"Version": "1", "Statement": [{"Effect":"allow","Action":"*","Resource":"*"}]}',
        '{"Version": "1", "Statement": [{"Effect":"Allow","Resource":"*"}]}',
        '{"Version": "1", "Statement": [{"Effect":"Allow","Action":"*"}]}',
        '{"Version": "1", "Statement": [{"Effect":"Allow","Action":"*","NotAction":"*",'
        '"Resource":"*"}]}',
        '{"Version": "1", "Statement": [{"Effect":"Allow","Action":"GetObject","Resource":"*"}]}',
        '{"Version": "1", "Statement": [{"Effect":"Allow","Action":[],"Resource":"*"}]}',
        '{"Version": "1", "Statement": [{"Effect":"Allow","Action":"*","Resource":"*","X":1}]}',
        '{"Version": "1", "Extra": 1, '
        '"Statement": [{"Effect":"Allow","Action":"*","Resource":"*"}]}',
        '{"Version": "1", "Statement": [{"Effect":"Allow","Action":"*","Resource":"*",'
        '"Condition":{"StringFoo":{"k":"v"}}}]}',
        '{"Version": "1", "Statement": [{"Effect":"Allow","Action":"*","Resource":"*",'
        '"Condition":{"IpAddress":{"acs:SourceIp":"not-an-ip"}}}]}',
        '{"Version": "1", "Statement": [{"Effect":"Allow","Action":"*","Resource":"*",'
        '"Condition":{"DateLessThan":{"acs:CurrentTime":"yesterday"}}}]}',
        '{"Version": "1", "Statement": [{"Effect":"Allow","Action":"*","Resource":"*",'
        '"Condition":{"StringEquals":{"k":{"nested":1}}}}]}',
        "[" * 100_000,
    ],
)
def test_grammar_errors(text: str) -> None:
    with pytest.raises(PolicyGrammarError):
        parse_policy(text)


def test_single_statement_object_is_accepted() -> None:
    policy = parse_policy(
        '{"Version":"1","Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}'
    )
    assert evaluate([policy], _obj("oss:GetObject", "k")) is Decision.DENY


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_statement_keys = st.sampled_from(
    ["Effect", "Action", "NotAction", "Resource", "NotResource", "Condition", "Other"]
)


@settings(max_examples=200)
@given(
    statement=st.dictionaries(
        _statement_keys,
        _json | st.sampled_from(["Allow", "Deny", "oss:*", "*", "acs:oss:*:*:b/*"]),
        max_size=6,
    )
)
def test_grammar_fails_only_with_policy_grammar_error(statement: dict[str, object]) -> None:
    document = {"Version": "1", "Statement": [statement]}
    with contextlib.suppress(PolicyGrammarError):
        parse_policy(json.dumps(document))


@given(
    key=st.text(alphabet="ab/*?", max_size=8),
    deny_pattern=st.text(alphabet="ab/*?", max_size=6),
)
def test_adding_a_deny_never_widens(key: str, deny_pattern: str) -> None:
    allow = {"Effect": "Allow", "Action": "oss:*", "Resource": "*"}
    deny = {
        "Effect": "Deny",
        "Action": "oss:GetObject",
        "Resource": f"acs:oss:*:*:b/{deny_pattern}",
    }
    request = _obj("oss:GetObject", key)
    with_deny = is_allowed([parse_policy(_doc(allow, deny))], None, request)
    assert with_deny <= is_allowed([parse_policy(_doc(allow))], None, request)
