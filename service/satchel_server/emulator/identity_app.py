"""The identity listener: an ECS metadata service and a credentials URI, as the cloud has them.

Metadata (as on an ECS instance, host 100.100.100.200 there):

    PUT /latest/api/token      (X-aliyun-ecs-metadata-token-ttl-seconds: 1..21600) -> a token
    GET /latest/meta-data/ram/security-credentials/    -> the instance's RAM role name
    GET /latest/meta-data/ram/security-credentials/R   -> {"Code": "Success", AccessKeyId, ...}

Stricter than an instance in its default mode: every GET needs the token (IMDSv2 enforced).
The instance role's trust policy must trust the ECS service, as RAM demands when a role is
attached to an instance.

Credentials URI (what ALIBABA_CLOUD_CREDENTIALS_URI points at):

    GET /credentials                                   -> the same JSON document

Both hand out STS sessions of a configured role, issued like AssumeRole's, which STS and OSS
then accept with their SecurityToken.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from aiohttp import web

from satchel_server.emulator.accounts import ECS_SERVICE, Role, parse_role_arn
from satchel_server.emulator.state import EmulatorState

STATE_KEY = web.AppKey("identity_state", EmulatorState)
TOKEN_PATH = "/latest/api/token"  # noqa: S105 - a path
CREDENTIALS_PATH = "/latest/meta-data/ram/security-credentials/"
URI_PATH = "/credentials"
TOKEN_TTL_HEADER = "X-aliyun-ecs-metadata-token-ttl-seconds"  # noqa: S105 - a name
TOKEN_HEADER = "X-aliyun-ecs-metadata-token"  # noqa: S105 - a name
MAX_TOKEN_TTL_S = 21600
_TOKENS = web.AppKey("metadata_tokens", dict[str, float])


def _format(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _role(state: EmulatorState, arn: str | None) -> Role:
    parsed = parse_role_arn(arn) if arn else None
    role = state.directory.role(*parsed) if parsed else None
    if role is None:
        raise web.HTTPNotFound(text="no role is attached")
    return role


def _credentials_document(state: EmulatorState, role: Role, session_name: str) -> web.Response:
    now = state.now("sts")
    lifetime = state.config.identity_credentials_seconds
    session = state.directory.issue_session(role, session_name, None, now + lifetime, now)
    return web.json_response(
        {
            "Code": "Success",
            "AccessKeyId": session.access_key_id,
            "AccessKeySecret": session.access_key_secret,
            "SecurityToken": session.security_token,
            "Expiration": _format(session.expiration),
            "LastUpdated": _format(now),
        }
    )


async def _put_token(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    raw = request.headers.get(TOKEN_TTL_HEADER, "")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOKEN_TTL_S:
        raise web.HTTPBadRequest(text=f"{TOKEN_TTL_HEADER} must be 1..{MAX_TOKEN_TTL_S}")
    now, tokens = state.now("sts"), request.app[_TOKENS]
    for stale in [t for t, expires in tokens.items() if expires <= now]:
        del tokens[stale]
    token = secrets.token_urlsafe(32)
    tokens[token] = now + int(raw)
    return web.Response(text=token)


def _require_token(request: web.Request) -> None:
    expires = request.app[_TOKENS].get(request.headers.get(TOKEN_HEADER, ""))
    if expires is None or expires <= request.app[STATE_KEY].now("sts"):
        raise web.HTTPUnauthorized(text="a valid metadata token is required (IMDSv2)")


def _instance_role(state: EmulatorState) -> Role:
    role = _role(state, state.config.instance_role_arn)
    if not role.trusts_service(ECS_SERVICE):
        raise web.HTTPNotFound(text="the role does not trust ecs.aliyuncs.com")
    return role


async def _role_name(request: web.Request) -> web.Response:
    _require_token(request)
    return web.Response(text=_instance_role(request.app[STATE_KEY]).name)


async def _role_credentials(request: web.Request) -> web.Response:
    _require_token(request)
    state = request.app[STATE_KEY]
    role = _instance_role(state)
    if request.match_info["role"] != role.name:
        raise web.HTTPNotFound(text="no such role on this instance")
    return _credentials_document(state, role, "ecs-instance")


async def _uri_credentials(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return _credentials_document(state, _role(state, state.config.uri_role_arn), "credentials-uri")


def build_identity_app(state: EmulatorState) -> web.Application:
    app = web.Application()
    app[STATE_KEY] = state
    app[_TOKENS] = {}
    app.router.add_put(TOKEN_PATH, _put_token)
    app.router.add_get(CREDENTIALS_PATH, _role_name)
    app.router.add_get(CREDENTIALS_PATH + "{role}", _role_credentials)
    app.router.add_get(URI_PATH, _uri_credentials)
    return app
