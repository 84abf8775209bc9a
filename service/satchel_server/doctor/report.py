"""A check's outcome, and the one place outcomes are rendered as lines."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.Enum):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    """One line of the report. `fix` says what to change; every failure has one."""

    name: str
    outcome: Outcome
    detail: str = ""
    fix: str = ""

    def line(self) -> str:
        text = f"[{self.outcome.value:>4}] {self.name}"
        if self.detail:
            text += f": {self.detail}"
        if self.fix:
            text += f" -- fix: {self.fix}"
        return text


def passed(name: str, detail: str = "") -> CheckResult:
    return CheckResult(name, Outcome.PASS, detail)


def warned(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, Outcome.WARN, detail, fix)


def failed(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, Outcome.FAIL, detail, fix)
