"""The STS listener: AssumeRole (Version 2015-04-01) over RPC 1.0 or ACS3 signatures, and
the anonymous AssumeRoleWithOIDC.

GET or POST, parameters in the query or a form body, answers in JSON or XML (`Format`).
The checks run in the real service's spirit: signature, time and nonce first (the signing
core), then the caller (a RAM user's key, or a role session's, whose SecurityToken was checked
with the signature and which must not have expired), the per-account rate limit, the role and
its trust (a role session needs the target role to trust its role and sts:AssumeRole in its
own permissions), then each parameter.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote
from xml.sax.saxutils import escape

from aiohttp import web

from satchel_server.emulator.accounts import Role, Session, parse_role_arn
from satchel_server.emulator.errors import StsError, render_sts_error
from satchel_server.emulator.faults import fault_middleware
from satchel_server.emulator.http_body import BodyTooLarge, read_capped
from satchel_server.emulator.oidc import OidcTokenError
from satchel_server.emulator.oss_xml import http_date
from satchel_server.emulator.ram_policy import Policy, PolicyGrammarError, parse_policy
from satchel_server.emulator.state import EmulatorState, new_request_id
from satchel_server.signing import (
    CredentialLookup,
    Reason,
    SigningCredentials,
    StsVerified,
    VerificationError,
    verify_acs3,
    verify_rpc,
)

STATE_KEY = web.AppKey("sts_state", EmulatorState)
VERSION = "2015-04-01"
MIN_DURATION_S = 900
_MAX_BODY = 256 * 1024
_SESSION_NAME = re.compile(r"[A-Za-z0-9.@_-]{2,64}")
_EXTERNAL_ID = re.compile(r"[A-Za-z0-9=,.@:/_-]{2,1224}")


def _expiration(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _lookup(state: EmulatorState) -> CredentialLookup:
    def lookup(access_key_id: str) -> SigningCredentials | None:
        user = state.directory.user_by_key(access_key_id)
        if user is not None:
            return SigningCredentials(access_key_id, user.access_key_secret)
        session = state.directory.session_by_key(access_key_id)
        if session is not None:
            return SigningCredentials(
                access_key_id, session.access_key_secret, session.security_token
            )
        return None

    return lookup


async def _read_body(request: web.Request) -> bytes:
    try:
        return await read_capped(request, _MAX_BODY)
    except BodyTooLarge:
        raise StsError("InvalidParameter.PolicySize", "The request body is too large.") from None


def _verify(state: EmulatorState, request: web.Request, body: bytes) -> tuple[StsVerified, str]:
    """(verified request, action); ACS3 names the action in a header, RPC in a parameter."""
    now = datetime.fromtimestamp(state.now("sts"), UTC)
    path, _, query = request.raw_path.partition("?")

    def nonce_seen(nonce: str) -> bool:
        # Nonces are random UUIDs: one window for all callers is stricter and just as fair.
        return not state.nonces.first_use("", nonce, state.now("sts"))

    try:
        if request.headers.get("Authorization", "").startswith("ACS3-"):
            verified = verify_acs3(
                method=request.method,
                path=unquote(path),
                query=query,
                headers=request.headers,
                body=body,
                now=now,
                lookup=_lookup(state),
                nonce_seen=nonce_seen,
            )
            params = dict(verified.params)
            if request.content_type == "application/x-www-form-urlencoded":
                params.update(parse_qsl(body.decode("utf-8", "replace")))
            verified = StsVerified(verified.access_key_id, params, verified.credentials)
            return verified, request.headers.get("x-acs-action", "")
        verified = verify_rpc(
            method=request.method,
            query=query,
            body=body.decode("utf-8", "replace"),
            now=now,
            lookup=_lookup(state),
            nonce_seen=nonce_seen,
        )
        return verified, verified.params.get("Action", "")
    except VerificationError as error:
        message = error.message
        if error.reason is Reason.STS_SIGNATURE_MISMATCH and error.string_to_sign:
            # POP appends its StringToSign; aliyun-python-sdk-core compares it with its own to
            # tell a wrong secret (InvalidAccessKeySecret) from a tampered request.
            message = f"{message} server string to sign is:{error.string_to_sign}"
        raise StsError(error.code, message, status=error.status) from None


def _caller_account(state: EmulatorState, access_key_id: str) -> str:
    """The account of a verified caller: a RAM user, or a role session not yet expired."""
    user = state.directory.user_by_key(access_key_id)
    if user is not None:
        return user.account_id
    session = state.directory.session_by_key(access_key_id)
    if session is None:  # verified a moment ago; only a race with pruning gets here
        raise StsError("InvalidAccessKeyId.NotFound")
    if session.expiration <= state.now("sts"):
        raise StsError("InvalidSecurityToken.Expired")
    return session.role.account_id


def _check_trust(state: EmulatorState, access_key_id: str, role: Role) -> None:
    user = state.directory.user_by_key(access_key_id)
    if user is not None:
        trusted = role.trusts(user)
    else:
        session = state.directory.session_by_key(access_key_id)
        trusted = session is not None and role.trusts_role_session(session)
    if not trusted:
        raise StsError("NoPermission")


def _role(state: EmulatorState, params: Mapping[str, str]) -> Role:
    arn = params.get("RoleArn")
    if not arn:
        raise StsError("MissingRoleArn")
    parsed = parse_role_arn(arn)
    if parsed is None:
        raise StsError("InvalidParameter.RoleArn")
    role = state.directory.role(*parsed)
    if role is None:
        raise StsError("EntityNotExist.Role")
    return role


def _check_external_id(params: Mapping[str, str], role: Role) -> None:
    external_id = params.get("ExternalId")
    if external_id is not None and not _EXTERNAL_ID.fullmatch(external_id):
        raise StsError("InvalidParameter.ExternalId")
    if role.external_id is not None and external_id != role.external_id:
        raise StsError("NoPermission", "The ExternalId does not match the role's trust policy.")


def _session_name(params: Mapping[str, str]) -> str:
    name = params.get("RoleSessionName")
    if not name:
        raise StsError("MissingRoleSessionName")
    if not _SESSION_NAME.fullmatch(name):
        raise StsError("InvalidParameter.RoleSessionName")
    return name


def _duration(params: Mapping[str, str], role: Role) -> int:
    raw = params.get("DurationSeconds") or "3600"
    if not raw.isdigit() or not MIN_DURATION_S <= int(raw) <= role.max_session_duration:
        raise StsError(
            "InvalidParameter.DurationSeconds",
            f"The Min/Max value of DurationSeconds is {MIN_DURATION_S}/"
            f"{role.max_session_duration} seconds.",
        )
    return int(raw)


def _session_policy(params: Mapping[str, str], max_chars: int) -> Policy | None:
    text = params.get("Policy")
    if text is None or text == "":
        return None
    if len(text) > max_chars:
        raise StsError(
            "InvalidParameter.PolicySize", f"The size of Policy must be at most {max_chars}."
        )
    try:
        return parse_policy(text)
    except PolicyGrammarError:
        raise StsError("InvalidParameter.PolicyGrammar") from None


def _credentials_fields(session: Session, request_id: str) -> dict[str, object]:
    return {
        "RequestId": request_id,
        "AssumedRoleUser": {"AssumedRoleId": session.assumed_role_id, "Arn": session.arn},
        "Credentials": {
            "SecurityToken": session.security_token,
            "AccessKeyId": session.access_key_id,
            "AccessKeySecret": session.access_key_secret,
            "Expiration": _expiration(session.expiration),
        },
    }


def _render_success(fields: Mapping[str, object], fmt: str) -> web.Response:
    if fmt.upper() == "XML":
        body = '<?xml version="1.0" encoding="UTF-8"?>' + _xml("AssumeRoleResponse", fields)
        return web.Response(body=body.encode(), content_type="text/xml", charset="utf-8")
    return web.json_response(fields)


def _xml(name: str, value: object) -> str:
    if isinstance(value, Mapping):
        inner = "".join(_xml(k, v) for k, v in value.items())
    else:
        inner = escape(str(value))
    return f"<{name}>{inner}</{name}>"


async def _assume_role(
    state: EmulatorState, request: web.Request, body: bytes, request_id: str
) -> web.Response:
    verified, action = _verify(state, request, body)
    params = verified.params
    if action != "AssumeRole":
        raise StsError("InvalidAction.NotFound")
    version = request.headers.get("x-acs-version") or params.get("Version")
    if version != VERSION:
        raise StsError("InvalidVersion")
    account_id = _caller_account(state, verified.access_key_id)
    if not state.rate_limiter.allow(account_id, state.now("sts")):
        raise StsError("Throttling.User")
    role = _role(state, params)
    _check_trust(state, verified.access_key_id, role)
    _check_external_id(params, role)
    return _issue(state, role, params, request_id)


def _issue(
    state: EmulatorState,
    role: Role,
    params: Mapping[str, str],
    request_id: str,
    extra: Mapping[str, object] | None = None,
) -> web.Response:
    name = _session_name(params)
    duration = _duration(params, role)
    policy = _session_policy(params, state.config.policy_max_chars)
    now = state.now("sts")
    session = state.directory.issue_session(role, name, policy, now + duration, now)
    state.counters.bump("assume_role_issued")
    fields = {**_credentials_fields(session, request_id), **(extra or {})}
    return _render_success(fields, params.get("Format", "JSON"))


def _assume_role_with_oidc(
    state: EmulatorState, params: Mapping[str, str], request_id: str
) -> web.Response:
    """Anonymous: the OIDC token is the proof, checked against the account's provider."""
    if params.get("Version") != VERSION:
        raise StsError("InvalidVersion")
    for name in ("OIDCProviderArn", "OIDCToken"):
        if not params.get(name):
            raise StsError("MissingParameter", f"{name} is mandatory for this action.")
    if not params.get("OIDCToken", "").strip():
        raise StsError("AuthenticationFail.OIDCToken.Invalid", "The OIDCToken can not empty.")
    role = _role(state, params)
    provider = state.directory.oidc_provider(params["OIDCProviderArn"])
    if provider is None or provider.account_id != role.account_id:
        raise StsError("AuthenticationFail.NoPermission", "No such OIDC Provider registered.")
    if not state.rate_limiter.allow(role.account_id, state.now("sts")):
        raise StsError("Throttling.User")
    try:
        verified = provider.verify(params["OIDCToken"], state.now("sts"))
    except OidcTokenError as error:
        raise StsError(error.code, error.message) from None
    context = {
        "oidc:iss": verified.issuer,
        "oidc:aud": verified.audience,
        "oidc:sub": verified.subject,
    }
    if not role.trusts_oidc(provider.arn, context):
        raise StsError("AuthenticationFail.NoPermission", "There is no permission")
    token_info = {"OIDCTokenInfo": {"Issuer": verified.issuer, "Subject": verified.subject}}
    return _issue(state, role, params, request_id, token_info)


def _unsigned_params(request: web.Request, body: bytes) -> dict[str, str]:
    _, _, query = request.raw_path.partition("?")
    params = dict(parse_qsl(query))
    if request.content_type == "application/x-www-form-urlencoded":
        params.update(parse_qsl(body.decode("utf-8", "replace")))
    return params


def _format_hint(request: web.Request) -> str:
    """The requested Format, read leniently so even a rejected request gets its format."""
    _, _, query = request.raw_path.partition("?")
    return dict(parse_qsl(query)).get("Format", "JSON")


def _error_response(error: StsError, request: web.Request, request_id: str) -> web.Response:
    rendered = render_sts_error(error, request_id, request.host, _format_hint(request))
    return web.Response(
        status=rendered.status, body=rendered.body, headers={"Content-Type": rendered.content_type}
    )


async def handle(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    response = await _answer(state, request, new_request_id())
    # The service's own idea of the time (injected clock and offset), as clients see it.
    response.headers["Date"] = http_date(state.now("sts"))
    return response


async def _answer(
    state: EmulatorState, request: web.Request, request_id: str
) -> web.StreamResponse:
    if request.method not in ("GET", "POST"):
        return _error_response(StsError("InvalidAction.NotFound"), request, request_id)
    try:
        body = await _read_body(request)
        params = _unsigned_params(request, body)
        action = request.headers.get("x-acs-action") or params.get("Action")
        if action == "AssumeRoleWithOIDC":
            return _assume_role_with_oidc(state, params, request_id)
        return await _assume_role(state, request, body, request_id)
    except StsError as error:
        return _error_response(error, request, request_id)


def _fault_error(request: web.Request, status: int, throttle: bool) -> web.StreamResponse:
    if throttle:
        error = StsError("Throttling.User")
    elif status == 503:
        error = StsError("ServiceUnavailable")
    else:
        error = StsError("InternalError", status=status or 500)
    return _error_response(error, request, new_request_id())


@web.middleware
async def _count_calls(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    # Outermost, so an attempt counts even when a fault or a check answers it: what a
    # client's retries and a broker's single-flight are measured by.
    request.app[STATE_KEY].counters.bump("assume_role_calls")
    return await handler(request)


def build_sts_app(state: EmulatorState) -> web.Application:
    app = web.Application(
        middlewares=[_count_calls, fault_middleware(state.faults, "sts", _fault_error)]
    )
    app[STATE_KEY] = state
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
