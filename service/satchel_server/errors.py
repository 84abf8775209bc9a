"""Domain errors. Each knows whether a retry could succeed.

Messages are written for the person who has to act on them and never contain
a secret: secrets live only in fields marked repr=False.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error Satchel raises on purpose."""

    retryable: bool = False


class ConfigError(DomainError):
    """The configuration cannot be used. Names what is wrong as the user wrote it, and why.

    `key` is a command-line flag ("--listen"), an environment variable
    ("ALIBABA_CLOUD_ACCESS_KEY_ID") or a key of the settings file ("scopes.saves.bucket").
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{_described(key)}: {problem}")
        self.key = key
        self.problem = problem


def _described(key: str) -> str:
    if key.startswith("--"):
        return key
    if key.isupper():
        return f"environment variable {key}"
    return f"configuration key {key!r}"


class InvalidArgument(DomainError):
    """A request field breaks a rule. Reported to the caller with the field's name."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule

    def within(self, path: str) -> InvalidArgument:
        """The same rule, its field named from the request's root (`items[3]` + `.key`)."""
        return InvalidArgument(f"{path}.{self.field}", self.rule)


class InternalFault(DomainError):
    """Satchel caught itself about to do something wrong and stopped (fail closed)."""


class NotConfigured(DomainError):
    """An RPC this server was started without the means to serve (no scopes, no STS access)."""

    def __init__(self, rpc: str) -> None:
        super().__init__(
            f"{rpc} cannot be served: this server was started without scopes or STS access"
        )


class PolicyTooLarge(InternalFault):
    """The session policy would exceed STS's cap. Satchel's bug or config, never the caller's."""

    def __init__(self, size: int, cap: int) -> None:
        super().__init__(f"session policy is {size} characters, over the cap of {cap}")
        self.size = size
        self.cap = cap


class UpstreamUnavailable(DomainError):
    """STS is throttling, failing or unreachable, or our own STS budget is spent."""

    retryable = True

    def __init__(self, reason: str, retry_after_seconds: float = 1.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_seconds = retry_after_seconds


class UsageUnavailable(UpstreamUnavailable):
    """A folder's usage could not be measured now, so an upload to it is not allowed.

    A quota that cannot be checked is not waived; the message says why (OSS failing,
    or the scope's lookup rate spent) and the retry hint when to try again.
    """


class QuotaExceeded(DomainError):
    """The upload would take the player's folder past the scope's quota."""


class UpstreamDeadline(DomainError):
    """The caller's deadline ran out before STS answered."""

    retryable = True


class UsageDeadline(UpstreamDeadline):
    """The caller's deadline ran out before OSS listed the folder an upload goes to."""


class UpstreamRejected(DomainError):
    """STS refused for a reason an operator must fix (role, trust, key, clock).

    `operator_message` may name the upstream code; the message sent to callers
    stays generic so no account detail leaks to them.
    """

    def __init__(self, code: str, operator_message: str) -> None:
        super().__init__(f"STS refused the request: {code}")
        self.code = code
        self.operator_message = operator_message


class UpstreamBug(DomainError):
    """STS said our request was malformed (InvalidParameter.*): a Satchel bug."""

    def __init__(self, code: str) -> None:
        super().__init__(f"STS rejected a parameter Satchel sent: {code}")
        self.code = code


class Unauthenticated(DomainError):
    """The caller's credentials are missing or bad.

    `reason` is for the audit log only; the caller is told nothing about which
    part was wrong, so a probe learns nothing from the answer.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PermissionDenied(DomainError):
    """An authenticated caller asked for something its grants do not cover."""


class RateLimited(DomainError):
    """A caller's or a player's request rate is over its configured limit."""

    retryable = True

    def __init__(self, subject: str, retry_after_seconds: float) -> None:
        super().__init__(f"rate limit exceeded for this {subject}")
        self.subject = subject
        self.retry_after_seconds = retry_after_seconds
