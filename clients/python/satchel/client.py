"""Thin clients of `satchel.v1.TokenService`: `Client` (asyncio) and `SyncClient` (blocking).

Both take the same settings: target, bearer key, TLS / mTLS, default deadline, retries.
Every call returns a typed result (`Token`, `Presigned`) or raises a `SatchelError`
subclass carrying the details the server sent. `presign_many` returns one outcome per item:
its `Presigned`, or the `SatchelError` (returned, not raised) that item was refused with.

Retries happen at two levels, both bounded by the call's one deadline:

1. gRPC's own retry policy (the `grpc.service_config` channel option) retries UNAVAILABLE
   with jittered exponential backoff: connection refused while a server restarts, a drained
   server, or Satchel answering UNAVAILABLE. gRPC core never reads `google.rpc.RetryInfo`:
   its attempts after such an answer follow its own short backoff, unless the server also
   sends the standard `grpc-retry-pushback-ms` trailer, which gRPC does honour.
2. When the error gRPC finally surfaces is UNAVAILABLE or RESOURCE_EXHAUSTED and carries a
   RetryInfo delay, this client waits that delay and calls again, at most
   `RetryPolicy.server_delay_retries` times, and only when the delay (capped by
   `max_server_delay`) ends before the deadline. So one call makes at most
   `max_attempts * (1 + server_delay_retries)` attempts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack

import grpc
from google.protobuf.duration_pb2 import Duration

from satchel.errors import SatchelError, error_from_rpc
from satchel.results import (
    Method,
    Permission,
    Presigned,
    PresignItem,
    PresignOutcome,
    Token,
    presign_outcomes,
)
from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["TokenService"].full_name
DEFAULT_TIMEOUT_SECONDS = 10.0
# The statuses after which waiting the server's RetryInfo delay can make the same call work.
_SERVER_DELAY_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


@dataclass(frozen=True, slots=True)
class Tls:
    """TLS to the server; with `certificate_chain` and `private_key`, mutual TLS.

    All values are PEM bytes. No `root_certificates`: gRPC's default trust store.
    `server_name` overrides the name checked against the server's certificate (for a target
    given as an IP address, or a certificate issued to an internal name).
    """

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = field(default=None, repr=False)
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("mutual TLS needs both certificate_chain and private_key")

    @classmethod
    def from_files(
        cls,
        root_certificates: str | Path | None = None,
        certificate_chain: str | Path | None = None,
        private_key: str | Path | None = None,
        server_name: str | None = None,
    ) -> Tls:
        def read(path: str | Path | None) -> bytes | None:
            return None if path is None else Path(path).read_bytes()

        return cls(read(root_certificates), read(certificate_chain), read(private_key), server_name)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a call is retried; see the module docstring for the two levels."""

    # gRPC attempts per call, the first included (gRPC caps this at 5; 1 disables).
    max_attempts: int = 3
    initial_backoff: float = 0.1
    max_backoff: float = 1.0
    backoff_multiplier: float = 2.0
    # Extra calls made after waiting a RetryInfo delay, and the longest such wait (seconds).
    server_delay_retries: int = 1
    max_server_delay: float = 5.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= 5:
            raise ValueError("max_attempts must be 1..5 (gRPC's limit)")
        if self.server_delay_retries < 0 or self.max_server_delay < 0:
            raise ValueError("server_delay_retries and max_server_delay must not be negative")
        if self.initial_backoff <= 0 or self.max_backoff <= 0 or self.backoff_multiplier <= 0:
            raise ValueError("backoff values must be positive")

    def service_config(self) -> str:
        """The `grpc.service_config` JSON that gives every TokenService method this policy."""
        method_config: dict[str, Any] = {"name": [{"service": SERVICE_NAME}]}
        if self.max_attempts > 1:
            method_config["retryPolicy"] = {
                "maxAttempts": self.max_attempts,
                "initialBackoff": f"{self.initial_backoff}s",
                "maxBackoff": f"{self.max_backoff}s",
                "backoffMultiplier": self.backoff_multiplier,
                "retryableStatusCodes": ["UNAVAILABLE"],
            }
        return json.dumps({"methodConfig": [method_config]})

    def server_delay(
        self, error: SatchelError, retries_so_far: int, remaining: float
    ) -> float | None:
        """Seconds to wait before calling again after `error`, or None to give up now."""
        if (
            error.code not in _SERVER_DELAY_CODES
            or error.retry_delay is None
            or retries_so_far >= self.server_delay_retries
        ):
            return None
        delay = error.retry_delay.total_seconds()
        if delay > self.max_server_delay or delay >= remaining:
            return None  # waiting cannot help within this call's deadline
        return max(delay, 0.0)


NO_RETRIES = RetryPolicy(max_attempts=1, server_delay_retries=0)


class PlaintextKeyWarning(UserWarning):
    """A bearer key would travel unencrypted beyond this machine."""


_LOCAL_HOSTS = frozenset({"localhost", "::1"})


def is_local_target(target: str) -> bool:
    """True for targets that never leave this machine: loopback addresses, unix sockets."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    address = target.removeprefix("dns:").lstrip("/").removeprefix("ipv4:").removeprefix("ipv6:")
    if address.startswith("["):  # [::1]:50051
        host = address[1 : address.find("]")]
    elif address.count(":") > 1:  # a bare IPv6 address, no port
        host = address
    else:
        host = address.rsplit(":", 1)[0]
    if host in _LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost: it may resolve anywhere


@dataclass(frozen=True, slots=True)
class _Settings:
    """What `Client` and `SyncClient` share: channel options, credentials, metadata."""

    target: str
    api_key: str | None = field(repr=False)
    tls: Tls | None
    timeout: float
    retry: RetryPolicy
    options: tuple[tuple[str, Any], ...]

    @classmethod
    def of(
        cls,
        target: str,
        *,
        api_key: str | None,
        tls: Tls | None,
        timeout: float,
        retry: RetryPolicy | None,
        options: Sequence[tuple[str, Any]],
    ) -> _Settings:
        if not target:
            raise ValueError("target is required, for example 127.0.0.1:50051")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if api_key is not None:
            # Keys are usually read from files or the environment: a trailing newline is noise.
            api_key = api_key.strip()
            if not api_key or any(c.isspace() for c in api_key):
                raise ValueError("api_key must be a non-empty string without whitespace")
            if tls is None and not is_local_target(target):
                warnings.warn(
                    f"the bearer key is sent in plaintext to {target}: pass tls=Tls(...) unless"
                    " a proxy on the way encrypts the connection",
                    PlaintextKeyWarning,
                    stacklevel=3,  # the code that called Client(...) or SyncClient(...)
                )
        return cls(target, api_key, tls, timeout, retry or RetryPolicy(), tuple(options))

    def channel_options(self) -> list[tuple[str, Any]]:
        options: list[tuple[str, Any]] = [
            ("grpc.service_config", self.retry.service_config()),
            ("grpc.enable_retries", 1 if self.retry.max_attempts > 1 else 0),
        ]
        if self.tls is not None and self.tls.server_name:
            options.append(("grpc.ssl_target_name_override", self.tls.server_name))
        return options + list(self.options)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return () if self.api_key is None else (("authorization", f"Bearer {self.api_key}"),)


class _Attempts:
    """One logical call's deadline and server-delay retries, shared by both clients."""

    def __init__(self, retry: RetryPolicy, timeout: float) -> None:
        self._retry = retry
        self._deadline = time.monotonic() + timeout
        self._retries = 0

    def remaining(self) -> float:
        return max(self._deadline - time.monotonic(), 0.0)

    def delay_before_retry(self, error: SatchelError) -> float | None:
        delay = self._retry.server_delay(error, self._retries, self.remaining())
        if delay is not None:
            self._retries += 1
        return delay


def _duration(value: timedelta | float | None) -> Duration | None:
    if value is None:
        return None
    duration = Duration()
    duration.FromTimedelta(value if isinstance(value, timedelta) else timedelta(seconds=value))
    return duration


class TokenOptions(TypedDict, total=False):
    """Optional fields of `issue_token`."""

    scope: str  # a configured scope's name; empty or absent: the server's default scope
    ttl: timedelta | float | None  # seconds or a timedelta; absent: the scope's default


class PresignOptions(TypedDict, total=False):
    """Optional fields of `presign`."""

    scope: str  # a configured scope's name; empty or absent: the server's default scope
    expires_in: timedelta | float | None  # absent: the scope's default; may end up shorter
    content_type: str  # PUT and POST: the Content-Type the upload must carry (signed)
    max_size: int  # POST: the largest upload accepted, in bytes; 0: the scope's default
    forbid_overwrite: bool  # PUT and POST: refuse to replace an existing object
    content_length: int | None  # PUT, required: the body's exact size in bytes (signed)


def issue_token_request(
    player_id: str, permissions: Iterable[Permission | str] = (), **options: Unpack[TokenOptions]
) -> pb.IssueTokenRequest:
    """The wire request for `issue_token` (empty permissions: the scope's defaults)."""
    return pb.IssueTokenRequest(
        player_id=player_id,
        scope=options.get("scope", ""),
        permissions=[Permission(p).wire for p in permissions],
        ttl=_duration(options.get("ttl")),
    )


def presign_request(
    player_id: str, key: str, method: Method | str, **options: Unpack[PresignOptions]
) -> pb.PresignObjectRequest:
    """The wire request for `presign`."""
    return pb.PresignObjectRequest(
        player_id=player_id,
        scope=options.get("scope", ""),
        key=key,
        method=Method(method.upper()).wire,
        expires_in=_duration(options.get("expires_in")),
        content_type=options.get("content_type", ""),
        max_size=options.get("max_size", 0),
        forbid_overwrite=options.get("forbid_overwrite", False),
        content_length=options.get("content_length"),
    )


def presign_many_request(
    player_id: str, items: Iterable[PresignItem], scope: str = ""
) -> pb.PresignObjectsRequest:
    """The wire request for `presign_many` (1 to 100 items)."""
    return pb.PresignObjectsRequest(
        player_id=player_id, scope=scope, items=[item.to_proto() for item in items]
    )


class _ClientBase:
    """The constructor both clients share; `_open` makes the channel (or prepares to)."""

    def __init__(
        self,
        target: str,
        *,
        api_key: str | None = None,
        tls: Tls | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self._settings = _Settings.of(
            target, api_key=api_key, tls=tls, timeout=timeout, retry=retry, options=options
        )
        self._open()

    def _open(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target={self._settings.target!r})"


class Client(_ClientBase):
    """Asyncio client. Use `async with Client(...) as satchel:` or call `await close()`.

    The channel opens on first use, inside the running event loop, and is reused by every
    call: create one client per process (or per event loop) and share it.
    """

    def _open(self) -> None:
        # grpc.aio binds a channel to the event loop it is created in: wait for the first call.
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.TokenServiceAsyncStub | None = None

    def _connected(self) -> pb_grpc.TokenServiceAsyncStub:
        if self._stub is None:
            settings = self._settings
            if settings.tls is None:
                self._channel = grpc.aio.insecure_channel(
                    settings.target, options=settings.channel_options()
                )
            else:
                self._channel = grpc.aio.secure_channel(
                    settings.target,
                    settings.tls.channel_credentials(),
                    options=settings.channel_options(),
                )
            self._stub = pb_grpc.TokenServiceStub(self._channel)
        return self._stub

    async def issue_token(
        self,
        player_id: str,
        permissions: Iterable[Permission | str] = (),
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the gRPC deadline, sent to the server
        **options: Unpack[TokenOptions],
    ) -> Token:
        """Temporary STS credentials for the player's folder (options: `TokenOptions`)."""
        request = issue_token_request(player_id, permissions, **options)
        reply = await self._call(self._connected().IssueToken, request, timeout)
        return Token.from_proto(reply)

    async def presign(
        self,
        player_id: str,
        key: str,
        method: Method | str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the gRPC deadline, sent to the server
        **options: Unpack[PresignOptions],
    ) -> Presigned:
        """A presigned URL (GET, PUT, HEAD, DELETE) or POST form (options: `PresignOptions`)."""
        request = presign_request(player_id, key, method, **options)
        reply = await self._call(self._connected().PresignObject, request, timeout)
        return Presigned.from_proto(reply)

    async def presign_many(
        self,
        player_id: str,
        items: Iterable[PresignItem],
        *,
        scope: str = "",
        timeout: float | None = None,  # noqa: ASYNC109 - the gRPC deadline, sent to the server
    ) -> list[PresignOutcome]:
        """Up to 100 objects in one call: per item, in order, a `Presigned` or its error.

        A refused item does not fail the others: its outcome is the `SatchelError` it got.
        What concerns every item (player id, scope, caller, rate limit) raises.
        """
        request = presign_many_request(player_id, items, scope)
        reply = await self._call(self._connected().PresignObjects, request, timeout)
        return presign_outcomes(reply)

    async def _call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Any, Any],
        request: Any,
        timeout: float | None,  # noqa: ASYNC109 - the gRPC deadline, sent to the server
    ) -> Any:
        attempts = _Attempts(self._settings.retry, timeout or self._settings.timeout)
        while True:
            try:
                return await method(
                    request, timeout=attempts.remaining(), metadata=self._settings.metadata
                )
            except grpc.RpcError as exc:
                error = error_from_rpc(exc)
                delay = attempts.delay_before_retry(error)
                if delay is None:
                    raise error from exc
            await asyncio.sleep(delay)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


class SyncClient(_ClientBase):
    """Blocking client with the same settings and results as `Client`; thread-safe."""

    def _open(self) -> None:
        settings = self._settings
        if settings.tls is None:
            self._channel = grpc.insecure_channel(
                settings.target, options=settings.channel_options()
            )
        else:
            self._channel = grpc.secure_channel(
                settings.target, settings.tls.channel_credentials(), settings.channel_options()
            )
        self._stub = pb_grpc.TokenServiceStub(self._channel)

    def issue_token(
        self,
        player_id: str,
        permissions: Iterable[Permission | str] = (),
        *,
        timeout: float | None = None,
        **options: Unpack[TokenOptions],
    ) -> Token:
        """Temporary STS credentials for the player's folder (options: `TokenOptions`)."""
        request = issue_token_request(player_id, permissions, **options)
        return Token.from_proto(self._call(self._stub.IssueToken, request, timeout))

    def presign(
        self,
        player_id: str,
        key: str,
        method: Method | str,
        *,
        timeout: float | None = None,
        **options: Unpack[PresignOptions],
    ) -> Presigned:
        """A presigned URL (GET, PUT, HEAD, DELETE) or POST form (options: `PresignOptions`)."""
        request = presign_request(player_id, key, method, **options)
        return Presigned.from_proto(self._call(self._stub.PresignObject, request, timeout))

    def presign_many(
        self,
        player_id: str,
        items: Iterable[PresignItem],
        *,
        scope: str = "",
        timeout: float | None = None,
    ) -> list[PresignOutcome]:
        """Up to 100 objects in one call: per item, in order, a `Presigned` or its error."""
        request = presign_many_request(player_id, items, scope)
        return presign_outcomes(self._call(self._stub.PresignObjects, request, timeout))

    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[Any, Any],
        request: Any,
        timeout: float | None,
    ) -> Any:
        attempts = _Attempts(self._settings.retry, timeout or self._settings.timeout)
        while True:
            try:
                return method(
                    request, timeout=attempts.remaining(), metadata=self._settings.metadata
                )
            except grpc.RpcError as exc:
                error = error_from_rpc(exc)
                delay = attempts.delay_before_retry(error)
                if delay is None:
                    raise error from exc
            time.sleep(delay)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
