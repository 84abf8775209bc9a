"""RAM policy documents: strict grammar check and evaluation.

Grammar failures raise `PolicyGrammarError`, which the STS app answers as
`InvalidParameter.PolicyGrammar`. Evaluation follows RAM: a request is allowed only when every
policy layer (the role's policies, then the session policy if one was given) has a matching
Allow and no layer has a matching Deny; explicit Deny always wins and the default is deny.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from satchel_server.emulator.conditions import Condition, ConditionError, parse_condition_block
from satchel_server.emulator.wildcard import wildcard_match

_STATEMENT_KEYS = frozenset(
    {"Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)


class PolicyGrammarError(ValueError):
    """The document is not a valid RAM policy; the message says where (never echoes values)."""


class Effect(Enum):
    ALLOW = "Allow"
    DENY = "Deny"


class Decision(Enum):
    ALLOW = "allow"
    DENY = "deny"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class Statement:
    effect: Effect
    actions: tuple[str, ...]
    actions_negated: bool
    resources: tuple[str, ...]
    resources_negated: bool
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class Request:
    """What is being asked: one action on one resource, with condition-key values."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


def _string_list(value: object, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise PolicyGrammarError(f"{where} must be a string or a non-empty list of strings")
    if not all(isinstance(item, str) and item for item in items):
        raise PolicyGrammarError(f"{where} must contain only non-empty strings")
    return tuple(str(item) for item in items)


def _check_action(action: str, where: str) -> None:
    if action == "*":
        return
    service, sep, name = action.partition(":")
    if not sep or not service or not name:
        raise PolicyGrammarError(f"{where}: an action must look like 'service:Action'")


def _exactly_one(raw: Mapping[str, object], a: str, b: str, where: str) -> tuple[object, bool]:
    if (a in raw) == (b in raw):
        raise PolicyGrammarError(f"{where}: exactly one of {a} and {b} is required")
    return (raw[b], True) if b in raw else (raw[a], False)


def _parse_statement(raw: object, index: int) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(raw, dict):
        raise PolicyGrammarError(f"{where} must be an object")
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise PolicyGrammarError(f"{where} has unknown elements: {sorted(unknown)}")
    effect_raw = raw.get("Effect")
    if effect_raw not in ("Allow", "Deny"):
        raise PolicyGrammarError(f"{where}.Effect must be 'Allow' or 'Deny'")
    action_raw, actions_negated = _exactly_one(raw, "Action", "NotAction", where)
    actions = _string_list(action_raw, f"{where}.Action")
    for action in actions:
        _check_action(action, f"{where}.Action")
    resource_raw, resources_negated = _exactly_one(raw, "Resource", "NotResource", where)
    resources = _string_list(resource_raw, f"{where}.Resource")
    try:
        conditions = parse_condition_block(raw.get("Condition", {}))
    except ConditionError as exc:
        raise PolicyGrammarError(f"{where}.Condition: {exc}") from exc
    return Statement(
        effect=Effect(effect_raw),
        # RAM compares action names case-insensitively; resources stay case-sensitive.
        actions=tuple(action.lower() for action in actions),
        actions_negated=actions_negated,
        resources=resources,
        resources_negated=resources_negated,
        conditions=conditions,
    )


def parse_policy_document(document: object) -> Policy:
    """Validate an already-decoded JSON document."""
    if not isinstance(document, dict):
        raise PolicyGrammarError("the policy must be a JSON object")
    unknown = set(document) - {"Version", "Statement"}
    if unknown:
        raise PolicyGrammarError(f"unknown top-level elements: {sorted(unknown)}")
    if document.get("Version") != "1":
        raise PolicyGrammarError('Version must be the string "1"')
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise PolicyGrammarError("Statement must be a non-empty list")
    return Policy(tuple(_parse_statement(raw, i) for i, raw in enumerate(statements)))


def parse_policy(text: str) -> Policy:
    """Parse and validate a policy given as JSON text."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PolicyGrammarError("the policy is not valid JSON") from exc
    return parse_policy_document(document)


def _any_match(patterns: Sequence[str], value: str) -> bool:
    return any(wildcard_match(pattern, value) for pattern in patterns)


def _statement_applies(statement: Statement, request: Request) -> bool:
    action_hit = _any_match(statement.actions, request.action.lower())
    if action_hit == statement.actions_negated:
        return False
    resource_hit = _any_match(statement.resources, request.resource)
    if resource_hit == statement.resources_negated:
        return False
    context = {key.lower(): value for key, value in request.context.items()}
    return all(condition.holds(context) for condition in statement.conditions)


def evaluate(policies: Sequence[Policy], request: Request) -> Decision:
    """One policy layer: Deny if any statement denies, else Allow if any allows."""
    decision = Decision.NOT_APPLICABLE
    for policy in policies:
        for statement in policy.statements:
            if not _statement_applies(statement, request):
                continue
            if statement.effect is Effect.DENY:
                return Decision.DENY
            decision = Decision.ALLOW
    return decision


def is_allowed(
    role_policies: Sequence[Policy], session_policy: Policy | None, request: Request
) -> bool:
    """Effective permission of an STS session: role policies ∩ session policy."""
    if evaluate(role_policies, request) is not Decision.ALLOW:
        return False
    if session_policy is None:
        return True
    return evaluate([session_policy], request) is Decision.ALLOW
