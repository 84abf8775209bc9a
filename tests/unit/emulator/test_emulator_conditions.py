"""Condition operators, negation, missing keys and the IfExists forms."""

from __future__ import annotations

import pytest

from satchel_server.emulator.conditions import ConditionError, parse_condition_block


def _holds(block: dict[str, object], context: dict[str, str]) -> bool:
    ctx = {k.lower(): v for k, v in context.items()}
    return all(c.holds(ctx) for c in parse_condition_block(block))


@pytest.mark.parametrize(
    ("block", "context", "expected"),
    [
        ({"StringEquals": {"oss:Prefix": "a/"}}, {"oss:Prefix": "a/"}, True),
        ({"StringEquals": {"oss:Prefix": ["x", "a/"]}}, {"oss:Prefix": "a/"}, True),
        ({"StringEquals": {"oss:Prefix": "a/"}}, {"oss:Prefix": "A/"}, False),
        ({"StringEquals": {"oss:Prefix": "a/"}}, {}, False),
        ({"StringEqualsIfExists": {"oss:Prefix": "a/"}}, {}, True),
        ({"StringEqualsIfExists": {"oss:Prefix": "a/"}}, {"oss:Prefix": "b"}, False),
        ({"StringNotEquals": {"oss:Delimiter": "/"}}, {"oss:Delimiter": "/"}, False),
        ({"StringNotEquals": {"oss:Delimiter": "/"}}, {"oss:Delimiter": "|"}, True),
        ({"StringNotEquals": {"oss:Delimiter": "/"}}, {}, True),
        ({"StringLike": {"oss:Prefix": "p/12/*"}}, {"oss:Prefix": "p/12/x"}, True),
        ({"StringLike": {"oss:Prefix": "p/12/*"}}, {"oss:Prefix": "p/1"}, False),
        ({"StringNotLike": {"oss:Prefix": "p/12/*"}}, {"oss:Prefix": "p/1"}, True),
        ({"StringNotLike": {"oss:Prefix": ["p/1*", "q*"]}}, {"oss:Prefix": "p/12"}, False),
        ({"StringEqualsIgnoreCase": {"k": "AbC"}}, {"k": "abc"}, True),
        ({"IpAddress": {"acs:SourceIp": "127.0.0.0/8"}}, {"acs:SourceIp": "127.0.0.1"}, True),
        ({"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}, {"acs:SourceIp": "127.0.0.1"}, False),
        ({"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}, {"acs:SourceIp": "garbage"}, False),
        ({"NotIpAddress": {"acs:SourceIp": "10.0.0.0/8"}}, {"acs:SourceIp": "127.0.0.1"}, True),
        ({"IpAddress": {"acs:SourceIp": "::1"}}, {"acs:SourceIp": "::1"}, True),
        (
            {"DateLessThan": {"acs:CurrentTime": "2030-01-01T00:00:00Z"}},
            {"acs:CurrentTime": "2026-01-01T00:00:00Z"},
            True,
        ),
        (
            {"DateGreaterThan": {"acs:CurrentTime": "2030-01-01T00:00:00+08:00"}},
            {"acs:CurrentTime": "2026-01-01T00:00:00Z"},
            False,
        ),
        ({"DateGreaterThanIfExists": {"acs:CurrentTime": "2030-01-01T00:00:00Z"}}, {}, True),
        ({"Bool": {"acs:SecureTransport": True}}, {"acs:SecureTransport": "true"}, True),
        ({"NumericLessThan": {"n": 5}}, {"n": "4"}, True),
        # Condition keys are case-insensitive.
        ({"StringEquals": {"OSS:PREFIX": "a"}}, {"oss:prefix": "a"}, True),
        # Two operators AND together.
        (
            {"StringLike": {"oss:Prefix": "a*"}, "StringEquals": {"oss:Delimiter": "/"}},
            {"oss:Prefix": "ab"},
            False,
        ),
    ],
)
def test_operators(block: dict[str, object], context: dict[str, str], expected: bool) -> None:
    assert _holds(block, context) is expected


@pytest.mark.parametrize(
    "block",
    [
        [],
        {"Nope": {"k": "v"}},
        {"StringEquals": {}},
        {"StringEquals": {"k": []}},
        {"StringEquals": {"": "v"}},
        {"NumericEquals": {"k": "x"}},
        {"Bool": {"k": "maybe"}},
        {"IpAddressIfExists": {"k": "300.1.1.1"}},
    ],
)
def test_bad_blocks(block: object) -> None:
    with pytest.raises(ConditionError):
        parse_condition_block(block)
