"""A RAM role's trust policy: who may assume it (RAM identities, services, OIDC providers).

The document is RAM's: statements with `Effect`, `Action` (`sts:AssumeRole`), `Principal`
(`RAM`, `Service` or `Federated`, each a string or list) and an optional `Condition`, which
for an OIDC provider uses the `oidc:iss`, `oidc:aud` and `oidc:sub` keys. An explicit Deny
wins; nothing is trusted unless a statement allows it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from satchel_server.emulator.conditions import Condition, ConditionError, parse_condition_block
from satchel_server.emulator.ram_policy import PolicyGrammarError

PRINCIPAL_KINDS = ("RAM", "Service", "Federated")
_STATEMENT_KEYS = frozenset({"Effect", "Action", "Principal", "Condition"})


@dataclass(frozen=True)
class TrustStatement:
    allow: bool
    principals: Mapping[str, tuple[str, ...]]  # kind -> principals of that kind
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class TrustPolicy:
    statements: tuple[TrustStatement, ...]

    def trusts(self, kind: str, principal: str, context: Mapping[str, str] | None = None) -> bool:
        """Whether `principal` (of `kind`) may assume the role, given condition values."""
        lowered = {key.lower(): value for key, value in (context or {}).items()}
        decision = False
        for statement in self.statements:
            if principal not in statement.principals.get(kind, ()):
                continue
            if not all(condition.holds(lowered) for condition in statement.conditions):
                continue
            if not statement.allow:
                return False
            decision = True
        return decision


def _strings(value: object, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise PolicyGrammarError(f"{where} must be a string or a non-empty list of strings")
    return tuple(items)


def _statement(raw: object, where: str) -> TrustStatement:
    if not isinstance(raw, dict) or set(raw) - _STATEMENT_KEYS:
        raise PolicyGrammarError(f"{where} must be an object of {sorted(_STATEMENT_KEYS)}")
    if raw.get("Effect") not in ("Allow", "Deny"):
        raise PolicyGrammarError(f"{where}.Effect must be 'Allow' or 'Deny'")
    if {a.lower() for a in _strings(raw.get("Action"), f"{where}.Action")} != {"sts:assumerole"}:
        raise PolicyGrammarError(f"{where}.Action must be sts:AssumeRole")
    principal = raw.get("Principal")
    if not isinstance(principal, dict) or not principal or set(principal) - set(PRINCIPAL_KINDS):
        raise PolicyGrammarError(f"{where}.Principal must map {PRINCIPAL_KINDS} to principals")
    principals = {
        kind: _strings(value, f"{where}.Principal.{kind}") for kind, value in principal.items()
    }
    try:
        conditions = parse_condition_block(raw.get("Condition", {}))
    except ConditionError as exc:
        raise PolicyGrammarError(f"{where}.Condition: {exc}") from exc
    return TrustStatement(raw["Effect"] == "Allow", principals, conditions)


def parse_trust_policy(text: str) -> TrustPolicy:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise PolicyGrammarError("the trust policy is not JSON") from exc
    if not isinstance(document, dict) or document.get("Version") != "1":
        raise PolicyGrammarError('a trust policy is an object with Version "1"')
    statements = document.get("Statement")
    if not isinstance(statements, list) or not statements:
        raise PolicyGrammarError("Statement must be a non-empty list")
    return TrustPolicy(tuple(_statement(s, f"Statement[{i}]") for i, s in enumerate(statements)))
