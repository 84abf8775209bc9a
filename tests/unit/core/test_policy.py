"""Session policies: exact shape, confinement to the folder, size cap that fails closed."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satchel_server.errors import InternalFault, PolicyTooLarge
from satchel_server.rules.policy import assert_confined, build_policy, serialise, session_policy
from satchel_server.vocabulary import PlayerPermission

ALL = frozenset(PlayerPermission)


def test_full_policy_has_exactly_the_documented_shape() -> None:
    text = session_policy("bkt", "players/12/", ALL, 2048)
    assert json.loads(text) == {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "oss:GetObject",
                    "oss:PutObject",
                    "oss:AbortMultipartUpload",
                    "oss:ListParts",
                    "oss:DeleteObject",
                ],
                "Resource": ["acs:oss:*:*:bkt/players/12/*"],
            },
            {
                "Effect": "Allow",
                "Action": ["oss:ListObjects"],
                "Resource": ["acs:oss:*:*:bkt"],
                "Condition": {"StringLike": {"oss:Prefix": ["players/12/", "players/12/*"]}},
            },
        ],
    }
    assert " " not in text  # compact: STS counts characters


@pytest.mark.parametrize(
    ("permissions", "actions"),
    [
        ({PlayerPermission.READ}, [["oss:GetObject"]]),
        ({PlayerPermission.DELETE}, [["oss:DeleteObject"]]),
        ({PlayerPermission.LIST}, [["oss:ListObjects"]]),
        (
            {PlayerPermission.WRITE},
            [["oss:PutObject", "oss:AbortMultipartUpload", "oss:ListParts"]],
        ),
    ],
)
def test_each_permission_grants_only_its_actions(permissions: set, actions: list) -> None:
    policy = build_policy("bkt", "players/1/", permissions)
    assert [s["Action"] for s in policy["Statement"]] == actions


def test_too_large_fails_closed_and_is_never_truncated() -> None:
    text = session_policy("bkt", "players/1/", ALL, 2048)
    with pytest.raises(PolicyTooLarge) as caught:
        session_policy("bkt", "players/1/", ALL, len(text) - 1)
    assert caught.value.size == len(text)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p["Statement"][0]["Resource"].__setitem__(0, "acs:oss:*:*:bkt/players/*"),
        lambda p: p["Statement"][0]["Resource"].__setitem__(0, "acs:oss:*:*:bkt/players/1*"),
        lambda p: p["Statement"][0].__setitem__("Effect", "Deny"),
        lambda p: p["Statement"][1]["Condition"]["StringLike"].__setitem__("oss:Prefix", ["*"]),
        lambda p: p["Statement"][1]["Resource"].__setitem__(0, "acs:oss:*:*:other"),
        lambda p: p["Statement"].clear(),
    ],
)
def test_confinement_check_catches_any_widening(mutate) -> None:
    policy = build_policy("bkt", "players/1/", ALL)
    assert_confined(policy, "bkt", "players/1/")
    mutate(policy)
    with pytest.raises(InternalFault):
        assert_confined(policy, "bkt", "players/1/")


@given(
    player_id=st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z"),
    permissions=st.sets(st.sampled_from(list(PlayerPermission)), min_size=1),
)
def test_every_grant_lies_inside_the_players_folder(player_id: str, permissions: set) -> None:
    prefix = f"players/{player_id}/"
    policy = json.loads(session_policy("game-saves", prefix, permissions, 2048))
    for statement in policy["Statement"]:
        for resource in statement["Resource"]:
            assert resource in ("acs:oss:*:*:game-saves", f"acs:oss:*:*:game-saves/{prefix}*")
        for prefixes in statement.get("Condition", {}).get("StringLike", {}).values():
            assert all(p.startswith(prefix) for p in prefixes)


def test_longest_player_id_with_every_permission_fits_the_smallest_cap() -> None:
    longest = "players/" + "x" * 64 + "/"
    # 1024 is the cap on older accounts; a 63-character bucket name is the worst case.
    assert len(serialise(build_policy("b" * 63, longest, ALL))) <= 1024
