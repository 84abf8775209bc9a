"""The baseline: an "STS app server" written the way Alibaba Cloud's tutorials write one.

Each request builds the player's session policy, calls AssumeRole through the official SDK
(aliyun-python-sdk-sts; it is synchronous, so it runs in the default thread executor) and
answers the JSON the mobile OSS SDKs read. No cache: every request is one AssumeRole.
`/presign` signs one GET URL with oss2 on those fresh credentials, as the tutorials show.
Used only by `make bench` (bench/appserver.py); the policy is Satchel's own builder, so both
ask STS for the same document.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

import oss2
from aiohttp import web
from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdksts.request.v20150401.AssumeRoleRequest import AssumeRoleRequest

from satchel_server.rules.policy import session_policy
from satchel_server.vocabulary import PlayerPermission

PLAYER_ID = re.compile(r"[A-Za-z0-9_-]{1,48}")
KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")
PRESIGN_EXPIRES_S = 900


@dataclass(frozen=True, slots=True)
class AppServerConfig:
    access_key_id: str
    access_key_secret: str
    role_arn: str
    region: str
    bucket: str
    sts_host: str  # host:port of STS (the emulator's, over plain HTTP)
    oss_endpoint: str


CONFIG = web.AppKey("config", AppServerConfig)
CLIENT = web.AppKey("client", AcsClient)


def assume_role(config: AppServerConfig, client: AcsClient, player: str) -> dict[str, Any]:
    request = AssumeRoleRequest()
    request.set_accept_format("JSON")
    request.set_protocol_type("http")  # the emulator's STS; the tutorials' is HTTPS
    request.set_endpoint(config.sts_host)
    request.set_RoleArn(config.role_arn)
    request.set_RoleSessionName(f"player-{player}")
    prefix = f"players/{player}/"
    request.set_Policy(session_policy(config.bucket, prefix, [PlayerPermission.READ], 2048))
    request.set_DurationSeconds(3600)
    answer: dict[str, dict[str, Any]] = json.loads(client.do_action_with_exception(request))
    return answer["Credentials"]


async def _credentials(request: web.Request) -> dict[str, Any]:
    """The player's fresh STS credentials, or an HTTPException carrying the error JSON."""
    player = request.query.get("player_id", "")
    if not PLAYER_ID.fullmatch(player):
        raise _error(400, "InvalidParameter.PlayerId", "player_id: 1-48 of A-Za-z0-9_-")
    config, client = request.app[CONFIG], request.app[CLIENT]
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(None, assume_role, config, client, player)
    except (ServerException, ClientException) as error:
        raise _error(500, error.get_error_code(), error.get_error_msg()) from None


def _error(status: int, code: str, message: str) -> web.HTTPException:
    kind = web.HTTPBadRequest if status == 400 else web.HTTPInternalServerError
    body = json.dumps({"StatusCode": status, "ErrorCode": code, "ErrorMessage": message})
    return kind(text=body, content_type="application/json")


async def token(request: web.Request) -> web.Response:
    credentials = await _credentials(request)
    fields = ("AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration")
    return web.json_response({"StatusCode": 200, **{name: credentials[name] for name in fields}})


async def presign(request: web.Request) -> web.Response:
    key = request.query.get("key", "")
    if not KEY.fullmatch(key):
        raise _error(400, "InvalidParameter.Key", "key: segments of A-Za-z0-9._-, none dot-led")
    credentials = await _credentials(request)
    config = request.app[CONFIG]
    auth = oss2.StsAuth(
        credentials["AccessKeyId"],
        credentials["AccessKeySecret"],
        credentials["SecurityToken"],
        auth_version=oss2.AUTH_VERSION_4,
    )
    bucket = oss2.Bucket(auth, config.oss_endpoint, config.bucket, region=config.region)
    player = request.query["player_id"]
    url = bucket.sign_url("GET", f"players/{player}/{key}", PRESIGN_EXPIRES_S, slash_safe=True)
    return web.json_response({"StatusCode": 200, "Url": url})


def build_app(config: AppServerConfig) -> web.Application:
    app = web.Application()
    app[CONFIG] = config
    # One SDK client for the process (its connection pool is shared by the executor's threads).
    app[CLIENT] = AcsClient(config.access_key_id, config.access_key_secret, config.region)
    app.router.add_get("/sts/token", token)
    app.router.add_get("/sts/presign", presign)
    return app
