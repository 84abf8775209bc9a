"""STS AssumeRole over aiohttp: signed by the signing core, retried, parsed strictly.

Every attempt is signed afresh (new nonce and timestamp), never follows a
redirect, and never outlives the caller's deadline. An answer that is not
exactly a set of credentials is an error: partial credentials are never
returned.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from yarl import URL

from satchel_server.config import StsSettings
from satchel_server.credentials.broker import AssumeRoleRequest, AssumeRoleResult
from satchel_server.credentials.budget import Budget
from satchel_server.credentials.identity import Identity, RefreshingIdentity
from satchel_server.credentials.types import (
    Clock,
    TemporaryCredentials,
    parse_sts_expiration,
    utc_now,
)
from satchel_server.errors import DomainError, UpstreamDeadline, UpstreamUnavailable
from satchel_server.signing import Acs3Request, RpcRequest, SigningCredentials, sign_acs3, sign_rpc
from satchel_server.signing.rpc import rpc_canonical_query, rpc_encode
from satchel_server.sts.errors import classify, is_retryable
from satchel_server.sts.retry import RetryQuota, full_jitter_backoff

log = logging.getLogger(__name__)

STS_VERSION = "2015-04-01"
MAX_RESPONSE_BYTES = 64 * 1024  # a real answer is ~2 KiB; anything huge is not STS


class _FailedAttempt(Exception):
    """One failed attempt: the error to raise and whether another attempt may help."""

    def __init__(
        self, error: DomainError, retryable: bool, outcome: str, timeout: bool = False
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.retryable = retryable
        self.outcome = outcome  # for metrics: an error code or a transport failure kind
        self.timeout = timeout


class AliyunStsClient:
    """Implements broker.StsClient against STS (real or emulated) at `settings.endpoint`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: StsSettings,
        identity: RefreshingIdentity,
        *,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
        observe: Callable[[str, float], None] | None = None,
        retry_budget: Budget | None = None,
    ) -> None:
        self._session = session
        self._settings = settings
        # Satchel's own credentials: with a temporary identity, each attempt signs with
        # the current ones, their SecurityToken included.
        self._identity = identity
        self._signing: tuple[Identity, SigningCredentials] | None = None
        self._endpoint = URL(settings.endpoint)
        self._clock = clock
        self._rng = rng or random.SystemRandom()
        self._nonce = nonce
        self._quota = RetryQuota()
        # Called after every attempt with (outcome, seconds): metrics, when wired.
        self._observe = observe or (lambda outcome, seconds: None)
        # The first attempt's token is taken by whoever asks (broker, signer); a retry
        # is an AssumeRole call too, and takes its own from here.
        self._retry_budget = retry_budget

    async def assume_role(
        self, request: AssumeRoleRequest, *, deadline: float | None
    ) -> AssumeRoleResult:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            attempt += 1
            started = loop.time()
            try:
                result = await self._attempt(request, deadline)
            except _FailedAttempt as failed:
                self._observe(failed.outcome, loop.time() - started)
                log.warning("AssumeRole attempt %d failed: %s", attempt, failed.error)
                if not failed.retryable or attempt >= self._settings.max_attempts:
                    raise failed.error from None
                if not self._quota.try_spend(failed.timeout):
                    log.warning("STS retry quota spent: failing fast")
                    raise failed.error from None
                pause = full_jitter_backoff(attempt, self._rng)
                if deadline is not None and loop.time() + pause >= deadline:
                    raise failed.error from None
                await asyncio.sleep(pause)
                if not await self._budget_allows_retry(deadline):
                    raise failed.error from None
                continue
            self._observe("ok", loop.time() - started)
            self._quota.refund()
            return result

    async def _budget_allows_retry(self, deadline: float | None) -> bool:
        """Take a budget token for a retry; False when none comes before the deadline.

        Without this, retries of throttled calls would reach STS beyond the budget,
        adding load to an account that is already over its limit.
        """
        if self._retry_budget is None:
            return True
        left = None if deadline is None else deadline - asyncio.get_running_loop().time()
        try:
            await self._retry_budget.acquire(left)
        except UpstreamUnavailable:
            log.warning("STS budget has no token for a retry before the deadline")
            return False
        return True

    def _params(self, request: AssumeRoleRequest) -> dict[str, str]:
        params = {
            "RoleArn": request.role_arn,
            "RoleSessionName": request.role_session_name,
            "DurationSeconds": str(request.duration_seconds),
        }
        if request.policy:  # none: the role's own permissions (what `satchel doctor` probes)
            params["Policy"] = request.policy
        if request.external_id:
            params["ExternalId"] = request.external_id
        return params

    async def _signing_credentials(self) -> SigningCredentials:
        identity = await self._identity.current()
        if self._signing is None or self._signing[0] is not identity:
            credentials = SigningCredentials(
                identity.access_key_id, identity.access_key_secret, identity.security_token or None
            )
            self._signing = (identity, credentials)
        return self._signing[1]

    def _signed(
        self, request: AssumeRoleRequest, credentials: SigningCredentials
    ) -> tuple[URL, bytes, dict[str, str]]:
        """URL, body and headers of one attempt, freshly signed."""
        now, nonce, params = self._clock(), self._nonce(), self._params(request)
        base = str(self._endpoint).rstrip("/") + "/"
        if self._settings.signature == "acs3":
            host = self._endpoint.raw_authority
            signed = sign_acs3(
                Acs3Request(
                    "POST",
                    host,
                    "AssumeRole",
                    STS_VERSION,
                    credentials,
                    now,
                    nonce,
                    query=params,
                )
            )
            # The URL's query is exactly the canonical query ACS3 signed.
            query = rpc_canonical_query(rpc_encode(params.items()))
            return URL(f"{base}?{query}", encoded=True), b"", dict(signed.headers)
        rpc = sign_rpc(
            RpcRequest(
                "POST", "AssumeRole", STS_VERSION, credentials, now, nonce, body_params=params
            )
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return URL(f"{base}?{rpc.query}", encoded=True), rpc.body.encode("ascii"), headers

    async def _attempt(
        self, request: AssumeRoleRequest, deadline: float | None
    ) -> AssumeRoleResult:
        loop = asyncio.get_running_loop()
        total = self._settings.request_timeout_seconds
        if deadline is not None:
            total = min(total, deadline - loop.time())
            if total <= 0:
                raise _FailedAttempt(
                    UpstreamDeadline("no time left to call STS"), False, outcome="timeout"
                )
        timeout = aiohttp.ClientTimeout(
            total=total, sock_connect=self._settings.connect_timeout_seconds
        )
        try:
            credentials = await self._signing_credentials()
        except UpstreamUnavailable as error:
            raise _FailedAttempt(error, retryable=False, outcome="identity") from None
        url, body, headers = self._signed(request, credentials)
        try:
            # The request goes exactly as signed: aiohttp must not add a Content-Type
            # (ACS3 signs it when present) nor follow a redirect elsewhere.
            async with self._session.post(
                url,
                data=body,
                headers=headers,
                skip_auto_headers=("Content-Type",),
                allow_redirects=False,
                timeout=timeout,
            ) as response:
                raw = await response.content.read(MAX_RESPONSE_BYTES)
                status = response.status
        except TimeoutError:
            if deadline is not None and loop.time() >= deadline - 0.001:
                raise _FailedAttempt(
                    UpstreamDeadline("the deadline ran out while STS was answering"),
                    retryable=False,
                    outcome="timeout",
                ) from None
            raise _FailedAttempt(
                UpstreamUnavailable("STS did not answer in time"), True, "timeout", timeout=True
            ) from None
        except aiohttp.ClientSSLError as exc:
            # Never retried and never downgraded: a bad certificate is not transient.
            raise _FailedAttempt(
                UpstreamUnavailable(f"TLS with STS failed: {type(exc).__name__}"), False, "tls"
            ) from None
        except aiohttp.ClientError as exc:
            raise _FailedAttempt(
                UpstreamUnavailable(f"cannot reach STS: {type(exc).__name__}"), True, "connection"
            ) from None
        return self._interpret(status, raw)

    def _interpret(self, status: int, raw: bytes) -> AssumeRoleResult:
        if 300 <= status < 400:
            raise _FailedAttempt(
                UpstreamUnavailable(
                    f"STS answered a redirect (HTTP {status}); redirects are not followed"
                ),
                retryable=False,
                outcome="redirect",
            )
        document = _json_object(raw)
        if document is None:
            raise _FailedAttempt(
                UpstreamUnavailable(f"STS answered HTTP {status} without a JSON body"),
                retryable=status >= 500,
                outcome="malformed",
            )
        if status != 200:
            code = str(document.get("Code", ""))
            request_id = str(document.get("RequestId", ""))
            return_error = classify(code, status, request_id)
            raise _FailedAttempt(
                return_error, is_retryable(code, status), outcome=code or "malformed"
            )
        try:
            return _parse_credentials(document, self._clock)
        except (KeyError, TypeError, ValueError) as exc:
            raise _FailedAttempt(
                UpstreamUnavailable(f"STS answered 200 without usable credentials: {exc}"),
                retryable=False,
                outcome="malformed",
            ) from None


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _required_text(mapping: Mapping[str, Any], name: str) -> str:
    value = mapping[name]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} is missing or empty")
    return value


def _parse_credentials(document: Mapping[str, Any], clock: Clock) -> AssumeRoleResult:
    block = document["Credentials"]
    if not isinstance(block, dict):
        raise TypeError("Credentials is not an object")
    expiration = parse_sts_expiration(_required_text(block, "Expiration"))
    if expiration <= clock():
        raise ValueError("Expiration is already past")
    credentials = TemporaryCredentials(
        access_key_id=_required_text(block, "AccessKeyId"),
        access_key_secret=_required_text(block, "AccessKeySecret"),
        security_token=_required_text(block, "SecurityToken"),
        expiration=expiration,
    )
    return AssumeRoleResult(credentials, request_id=str(document.get("RequestId", "")))
