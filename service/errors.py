"""Domain errors. Each knows whether a retry could succeed.

Messages are written for the person who has to act on them and never contain
a secret: secrets live only in fields marked repr=False.
"""

from __future__ import annotations


class SatchelError(Exception):
    """Base of every error Satchel raises on purpose."""

    retryable: bool = False


class ConfigError(SatchelError):
    """The configuration cannot be used. Names the offending key and the problem."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"configuration key {key!r}: {problem}")
        self.key = key
        self.problem = problem
