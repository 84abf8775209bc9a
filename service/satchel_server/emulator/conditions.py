"""The Condition element of RAM policies: operators, parsing and evaluation.

Semantics (as RAM documents them, same as IAM): operators in one block are ANDed, keys under
one operator are ANDed, the values listed for one key are ORed. A negated operator holds when
the request value matches none of the values. A key absent from the request makes a positive
operator fail and a negated one hold; the `...IfExists` form holds whenever the key is absent.
Condition keys are case-insensitive; all values are validated when the policy is parsed, so a
bad date or CIDR is a grammar error, not a surprise at request time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from satchel_server.emulator.wildcard import wildcard_match


class ConditionError(ValueError):
    """A malformed Condition element."""


def parse_date(value: str) -> datetime:
    """ISO 8601 with an offset or `Z`; a naive time is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConditionError("a date value is not ISO 8601") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _check_date(value: str) -> None:
    parse_date(value)


def _check_ip(value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ConditionError("an IP value is not an address or CIDR block") from exc


def _check_number(value: str) -> None:
    try:
        float(value)
    except ValueError as exc:
        raise ConditionError("a numeric value is not a number") from exc


def _check_bool(value: str) -> None:
    if value.lower() not in ("true", "false"):
        raise ConditionError("a Bool value must be true or false")


def _no_check(value: str) -> None:
    del value


def _ip_in(request: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(request) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def _num(request: str, cond: str, compare: Callable[[float, float], bool]) -> bool:
    try:
        return compare(float(request), float(cond))
    except ValueError:
        return False


def _date(request: str, cond: str, compare: Callable[[datetime, datetime], bool]) -> bool:
    try:
        return compare(parse_date(request), parse_date(cond))
    except ConditionError:
        return False


Matcher = Callable[[str, str], bool]


@dataclass(frozen=True)
class _Operator:
    match: Matcher
    negated: bool
    check: Callable[[str], None]


def _string_ops() -> dict[str, _Operator]:
    def equals(r: str, c: str) -> bool:
        return r == c

    def equals_ci(r: str, c: str) -> bool:
        return r.lower() == c.lower()

    return {
        "StringEquals": _Operator(equals, False, _no_check),
        "StringNotEquals": _Operator(equals, True, _no_check),
        "StringEqualsIgnoreCase": _Operator(equals_ci, False, _no_check),
        "StringNotEqualsIgnoreCase": _Operator(equals_ci, True, _no_check),
        "StringLike": _Operator(wildcard_match_request, False, _no_check),
        "StringNotLike": _Operator(wildcard_match_request, True, _no_check),
    }


def wildcard_match_request(request: str, pattern: str) -> bool:
    return wildcard_match(pattern, request)


def _typed_ops() -> dict[str, _Operator]:
    def num(compare: Callable[[float, float], bool]) -> Matcher:
        return lambda r, c: _num(r, c, compare)

    def date(compare: Callable[[datetime, datetime], bool]) -> Matcher:
        return lambda r, c: _date(r, c, compare)

    return {
        "NumericEquals": _Operator(num(lambda a, b: a == b), False, _check_number),
        "NumericNotEquals": _Operator(num(lambda a, b: a == b), True, _check_number),
        "NumericLessThan": _Operator(num(lambda a, b: a < b), False, _check_number),
        "NumericLessThanEquals": _Operator(num(lambda a, b: a <= b), False, _check_number),
        "NumericGreaterThan": _Operator(num(lambda a, b: a > b), False, _check_number),
        "NumericGreaterThanEquals": _Operator(num(lambda a, b: a >= b), False, _check_number),
        "DateEquals": _Operator(date(lambda a, b: a == b), False, _check_date),
        "DateNotEquals": _Operator(date(lambda a, b: a == b), True, _check_date),
        "DateLessThan": _Operator(date(lambda a, b: a < b), False, _check_date),
        "DateLessThanEquals": _Operator(date(lambda a, b: a <= b), False, _check_date),
        "DateGreaterThan": _Operator(date(lambda a, b: a > b), False, _check_date),
        "DateGreaterThanEquals": _Operator(date(lambda a, b: a >= b), False, _check_date),
        "Bool": _Operator(lambda r, c: r.lower() == c.lower(), False, _check_bool),
        "IpAddress": _Operator(_ip_in, False, _check_ip),
        "NotIpAddress": _Operator(_ip_in, True, _check_ip),
    }


OPERATORS: Mapping[str, _Operator] = {**_string_ops(), **_typed_ops()}


@dataclass(frozen=True)
class Condition:
    """One (operator, key, values) triple; `key` is stored lower-case."""

    operator: str
    key: str
    values: tuple[str, ...]
    if_exists: bool = False

    def holds(self, context: Mapping[str, str]) -> bool:
        """`context` keys must already be lower-case."""
        op = OPERATORS[self.operator]
        request = context.get(self.key)
        if request is None:
            return self.if_exists or op.negated
        hit = any(op.match(request, value) for value in self.values)
        return hit != op.negated


def _values(raw: object) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise ConditionError("a condition key needs at least one value")
    out: list[str] = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, (str, int, float)):
            out.append(str(item))
        else:
            raise ConditionError("condition values must be strings, numbers or booleans")
    return tuple(out)


def parse_condition_block(raw: object) -> tuple[Condition, ...]:
    if not isinstance(raw, dict):
        raise ConditionError("Condition must be an object")
    conditions: list[Condition] = []
    for op_name, keys in raw.items():
        base, if_exists = (op_name[:-8], True) if op_name.endswith("IfExists") else (op_name, False)
        operator = OPERATORS.get(base)
        if operator is None:
            raise ConditionError(f"unknown operator {op_name!r}")
        if not isinstance(keys, dict) or not keys:
            raise ConditionError(f"{op_name} must map condition keys to values")
        for key, raw_values in keys.items():
            if not isinstance(key, str) or not key:
                raise ConditionError("condition keys must be non-empty strings")
            values = _values(raw_values)
            for value in values:
                operator.check(value)
            conditions.append(Condition(base, key.lower(), values, if_exists))
    return tuple(conditions)
