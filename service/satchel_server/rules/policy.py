"""RAM session policies that confine temporary credentials to one folder of one bucket.

The policy is built as a data structure, serialised compactly, checked for shape
(every grant stays inside the folder) and for size. Too large fails closed: a
truncated or loosened policy is never sent.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from satchel_server.errors import InternalFault, PolicyTooLarge
from satchel_server.vocabulary import PlayerPermission

# What each permission grants on objects inside the folder. WRITE includes the
# multipart actions so SDKs can switch to multipart uploads for large files.
OBJECT_ACTIONS: dict[PlayerPermission, tuple[str, ...]] = {
    PlayerPermission.READ: ("oss:GetObject",),
    PlayerPermission.WRITE: ("oss:PutObject", "oss:AbortMultipartUpload", "oss:ListParts"),
    PlayerPermission.DELETE: ("oss:DeleteObject",),
}
LIST_ACTION = "oss:ListObjects"
_ORDER = list(PlayerPermission)

Policy = dict[str, Any]


def bucket_resource(bucket: str) -> str:
    return f"acs:oss:*:*:{bucket}"


def folder_resource(bucket: str, prefix: str) -> str:
    # `prefix` ends in "/": players/12/* must never also match players/123/.
    return f"acs:oss:*:*:{bucket}/{prefix}*"


def _object_actions(permissions: Iterable[PlayerPermission]) -> list[str]:
    """The object actions of `permissions`, in a stable order."""
    granted = sorted(set(permissions), key=_ORDER.index)
    return [action for p in granted for action in OBJECT_ACTIONS.get(p, ())]


def build_policy(bucket: str, prefix: str, permissions: Iterable[PlayerPermission]) -> Policy:
    """The session policy granting exactly `permissions` inside `bucket/prefix`."""
    granted = set(permissions)
    statements: list[dict[str, Any]] = []
    actions = _object_actions(granted)
    if actions:
        statements.append(
            {"Effect": "Allow", "Action": actions, "Resource": [folder_resource(bucket, prefix)]}
        )
    if PlayerPermission.LIST in granted:
        statements.append(
            {
                "Effect": "Allow",
                "Action": [LIST_ACTION],
                "Resource": [bucket_resource(bucket)],
                "Condition": {"StringLike": {"oss:Prefix": [prefix, prefix + "*"]}},
            }
        )
    return {"Version": "1", "Statement": statements}


def assert_confined(policy: Policy, bucket: str, prefix: str) -> None:
    """Defence in depth: fail closed unless every grant lies inside the folder."""
    if not prefix.endswith("/") or not policy["Statement"]:
        raise InternalFault("session policy would grant nothing or an unbounded prefix")
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow" or set(statement) - {
            "Effect",
            "Action",
            "Resource",
            "Condition",
        }:
            raise InternalFault("session policy has an unexpected statement shape")
        if statement["Action"] == [LIST_ACTION]:
            prefixes = statement["Condition"]["StringLike"]["oss:Prefix"]
            confined = statement["Resource"] == [bucket_resource(bucket)] and prefixes == [
                prefix,
                prefix + "*",
            ]
        else:
            confined = statement["Resource"] == [folder_resource(bucket, prefix)] and (
                "Condition" not in statement
            )
        if not confined:
            raise InternalFault("session policy reaches outside the folder")


def serialise(policy: Policy) -> str:
    """Compact JSON: STS counts characters, and whitespace would waste the budget."""
    return json.dumps(policy, separators=(",", ":"), ensure_ascii=True)


def session_policy(
    bucket: str, prefix: str, permissions: Iterable[PlayerPermission], max_chars: int
) -> str:
    """Build, check and serialise; raise instead of sending anything wider or truncated."""
    policy = build_policy(bucket, prefix, permissions)
    assert_confined(policy, bucket, prefix)
    text = serialise(policy)
    if len(text) > max_chars:
        raise PolicyTooLarge(len(text), max_chars)
    return text


def policy_digest(text: str) -> str:
    """A short stable name for a policy, for cache keys (the text itself is not secret)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=8192)
def player_session_policy(
    bucket: str, prefix: str, permissions: frozenset[PlayerPermission], max_chars: int
) -> tuple[str, str]:
    """(policy text, digest) for a player, memoised: a cache hit must not rebuild them.

    Built, checked and serialised afresh on a miss, so it fails closed the same way;
    bounded to the recently active players (~8 MB at most).
    """
    text = session_policy(bucket, prefix, permissions, max_chars)
    return text, policy_digest(text)


def signer_policy(
    bucket: str,
    root: str,
    permissions: Iterable[PlayerPermission],
    max_chars: int,
    *,
    lists: bool = False,
) -> str:
    """The session policy of a scope's presigning credentials.

    They sign URLs for every player of the scope, so they reach `root` (the part of
    the prefix template before the player id; possibly the whole bucket), but only
    with the scope's object actions. Listing, which presigning cannot offer, only
    when `lists`: a scope with folder quotas measures its folders with it.
    """
    actions = _object_actions(permissions)
    if not actions:
        raise InternalFault("the scope allows no presignable permission")
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": actions, "Resource": [f"acs:oss:*:*:{bucket}/{root}*"]}
    ]
    if lists:
        statements.append(
            {
                "Effect": "Allow",
                "Action": [LIST_ACTION],
                "Resource": [bucket_resource(bucket)],
                "Condition": {"StringLike": {"oss:Prefix": [root + "*"]}},
            }
        )
    policy: Policy = {"Version": "1", "Statement": statements}
    text = serialise(policy)
    if len(text) > max_chars:
        raise PolicyTooLarge(len(text), max_chars)
    return text
