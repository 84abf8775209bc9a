"""Python client of Satchel: `Client` (asyncio), `SyncClient`, typed results and errors.

The generated stubs live in `satchel.v1`.
"""

from satchel.client import NO_RETRIES, Client, PlaintextKeyWarning, RetryPolicy, SyncClient, Tls
from satchel.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InternalServerError,
    InvalidArgumentError,
    PermissionDeniedError,
    ResourceExhaustedError,
    SatchelError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
)
from satchel.results import (
    Credentials,
    Method,
    Permission,
    Presigned,
    PresignItem,
    StorageLocation,
    Token,
)

__all__ = [
    "NO_RETRIES",
    "Client",
    "Credentials",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FieldViolation",
    "InternalServerError",
    "InvalidArgumentError",
    "Method",
    "Permission",
    "PermissionDeniedError",
    "PlaintextKeyWarning",
    "PresignItem",
    "Presigned",
    "ResourceExhaustedError",
    "RetryPolicy",
    "SatchelError",
    "StorageLocation",
    "SyncClient",
    "Tls",
    "Token",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
]
