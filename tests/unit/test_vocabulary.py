"""Permissions and HTTP methods: one set of members, and the proto is their source."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satchel.v1 import token_service_pb2 as pb
from satchel_server.api.servicer import permissions_from_proto
from satchel_server.config import ScopeSettings
from satchel_server.errors import InvalidArgument
from satchel_server.vocabulary import (
    METHOD_FROM_WIRE,
    PERMISSION_FROM_WIRE,
    PERMISSION_TO_WIRE,
    HttpMethod,
    PlayerPermission,
)


def test_every_wire_permission_is_one_member_of_the_same_name_and_back() -> None:
    named = {name for name, value in pb.Permission.items() if value}
    assert {f"PERMISSION_{member.name}" for member in PlayerPermission} == named
    for value, member in PERMISSION_FROM_WIRE.items():
        assert pb.Permission.Name(value) == f"PERMISSION_{member.name}"
        assert PERMISSION_TO_WIRE[member] == value


def test_every_wire_method_is_one_member_of_the_same_name() -> None:
    named = {name for name, value in pb.HttpMethod.items() if value}
    assert {f"HTTP_METHOD_{member.name}" for member in HttpMethod} == named
    assert all(pb.HttpMethod.Name(v) == f"HTTP_METHOD_{m}" for v, m in METHOD_FROM_WIRE.items())


def test_configuration_names_are_the_members_values() -> None:
    assert ScopeSettings.__dataclass_fields__["permissions"].default == tuple(PlayerPermission)


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1).filter(lambda v: v not in (1, 2, 3, 4)))
def test_an_unknown_permission_is_refused_by_name_never_by_number(value: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        permissions_from_proto([pb.PERMISSION_READ, value])  # type: ignore[list-item]
    assert caught.value.field == "permissions"
    assert "PERMISSION_READ" in caught.value.rule
    assert not re.search(r"\d", caught.value.rule.replace("PERMISSION_", ""))
