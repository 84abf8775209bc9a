"""Drive the official SDKs as signing referees, with their clocks and nonces frozen.

Used by the differential tests (loaded by path from tests/unit/signing/conftest.py) and by
``make_sdk_vectors.py``. Nothing here is Satchel code: it only calls the SDKs, patching
the few module attributes they read the time or a nonce from, and restoring them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import types
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import alibabacloud_oss_v2 as oss
import alibabacloud_oss_v2.presigner as v2_presigner
import alibabacloud_oss_v2.signer.v1 as v2_signer_v1
import alibabacloud_oss_v2.signer.v4 as v2_signer_v4
import oss2
import oss2.auth
import oss2.utils
from alibabacloud_oss_v2.types import HttpRequest, SigningContext
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi import utils as tea_utils
from alibabacloud_tea_openapi.utils_models import Config
from aliyunsdkcore.request import RpcRequest
from aliyunsdkcore.utils import parameter_helper
from aliyunsdksts.request.v20150401.AssumeRoleRequest import AssumeRoleRequest
from darabonba.core import DaraCore


@contextlib.contextmanager
def _patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def _frozen_datetime_module(now: _dt.datetime) -> types.SimpleNamespace:
    """A stand-in for the ``datetime`` module whose ``datetime.now/utcnow`` return ``now``."""

    class Frozen(_dt.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
            return now if tz is not None else now.replace(tzinfo=None)

        @classmethod
        def utcnow(cls) -> Any:  # type: ignore[override]
            return now.replace(tzinfo=None)

    return types.SimpleNamespace(datetime=Frozen, timezone=_dt.timezone, timedelta=_dt.timedelta)


@contextlib.contextmanager
def frozen_oss2(now: _dt.datetime) -> Iterator[None]:
    epoch = now.timestamp()
    fake_time = types.SimpleNamespace(time=lambda: epoch)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(oss2.auth, "time", fake_time))
        stack.enter_context(_patched(oss2.auth, "datetime", _frozen_datetime_module(now).datetime))
        http_date = lambda timeval=None: oss2.utils.formatdate(epoch, usegmt=True)  # noqa: E731
        stack.enter_context(_patched(oss2.utils, "http_date", http_date))
        yield


@contextlib.contextmanager
def frozen_oss_v2(now: _dt.datetime) -> Iterator[None]:
    fake = _frozen_datetime_module(now)
    with contextlib.ExitStack() as stack:
        for mod in (v2_presigner, v2_signer_v1, v2_signer_v4):
            stack.enter_context(_patched(mod, "datetime", fake))
        yield


def _oss2_auth(ak: str, sk: str, token: str | None, version: str) -> Any:
    if token:
        return oss2.StsAuth(ak, sk, token, auth_version=version)
    return oss2.make_auth(ak, sk, version)


def oss2_sign_url(
    *,
    version: str,
    ak: str,
    sk: str,
    token: str | None,
    endpoint: str,
    bucket: str,
    key: str,
    method: str,
    expires: int,
    now: _dt.datetime,
    region: str | None = None,
    path_style: bool = False,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    additional_headers: list[str] | None = None,
) -> str:
    """oss2 ``Bucket.sign_url`` with ``slash_safe=True`` (so ``/`` stays in the path)."""
    # oss2's StsAuth cannot sign additional headers into a URL; its V4 provider auth can.
    auth = (
        oss2.ProviderAuthV4(oss2.credentials.StaticCredentialsProvider(ak, sk, token))
        if additional_headers
        else _oss2_auth(ak, sk, token, version)
    )
    b = oss2.Bucket(
        auth,
        endpoint,
        bucket,
        region=region,
        is_path_style=path_style,
        is_verify_object_strict=False,
    )
    with frozen_oss2(now):
        return str(
            b.sign_url(
                method,
                key,
                expires,
                headers=dict(headers or {}),
                params=dict(params or {}),
                slash_safe=True,
                additional_headers=additional_headers,
            )
        )


def oss2_sign_header(
    *,
    version: str,
    ak: str,
    sk: str,
    token: str | None,
    bucket: str,
    key: str,
    method: str,
    now: _dt.datetime,
    region: str | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The headers oss2 adds when it signs a request (lower-cased names)."""
    req = oss2.http.Request(
        method,
        f"https://{bucket}.example.com/",
        headers=dict(headers or {}),
        params=dict(params or {}),
        region=region,
        product="oss",
    )
    with frozen_oss2(now):
        _oss2_auth(ak, sk, token, version)._sign_request(req, bucket, key)
    return {k.lower(): v for k, v in req.headers.items() if v is not None}


def oss_v2_presign(
    *,
    version: str,
    ak: str,
    sk: str,
    token: str | None,
    endpoint: str,
    region: str,
    bucket: str,
    key: str,
    method: str,
    expires: int,
    now: _dt.datetime,
    path_style: bool = False,
    fields: Mapping[str, Any] | None = None,
) -> oss.PresignResult:
    """alibabacloud-oss-v2 ``Client.presign``; ``fields`` are request-model attributes."""
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(ak, sk, token)
    cfg.region = region
    cfg.endpoint = endpoint
    cfg.signature_version = version
    cfg.use_path_style = path_style
    client = oss.Client(cfg)
    model = {
        "GET": oss.GetObjectRequest,
        "PUT": oss.PutObjectRequest,
        "HEAD": oss.HeadObjectRequest,
    }[method]
    with frozen_oss_v2(now):
        return client.presign(
            model(bucket=bucket, key=key, **dict(fields or {})),
            expires=_dt.timedelta(seconds=expires),
        )


def oss_v2_sign_header(
    *,
    version: str,
    ak: str,
    sk: str,
    token: str | None,
    region: str,
    bucket: str,
    key: str | None,
    method: str,
    now: _dt.datetime,
    url_query: str = "",
    headers: Mapping[str, str] | None = None,
    additional_headers: set[str] | None = None,
) -> dict[str, str]:
    """alibabacloud-oss-v2's signer applied to one request; ``url_query`` pre-encoded."""
    url = f"https://{bucket}.example.com/" + (f"?{url_query}" if url_query else "")
    request = HttpRequest(method, url)
    request.headers.update(dict(headers or {}))
    ctx = SigningContext(
        product="oss",
        region=region,
        bucket=bucket,
        key=key,
        request=request,
        credentials=oss.credentials.Credentials(ak, sk, token),
        signing_time=now,
        additional_headers=additional_headers,
    )
    signer = v2_signer_v4.SignerV4() if version == "v4" else v2_signer_v1.SignerV1()
    signer.sign(ctx)
    return {k.lower(): v for k, v in request.headers.items()}


def sdk_core_rpc_assume_role(
    *,
    ak: str,
    sk: str,
    timestamp: str,
    nonce: str,
    role_arn: str,
    session_name: str,
    duration: int | None = None,
    policy: str | None = None,
    region: str = "cn-hangzhou",
    method: str = "POST",
) -> tuple[str, str]:
    """aliyun-python-sdk-core ``get_url`` for AssumeRole: (``/?query``, StringToSign)."""
    req: RpcRequest = AssumeRoleRequest()
    req.set_accept_format("JSON")
    req.set_method(method)
    req.set_RoleArn(role_arn)
    req.set_RoleSessionName(session_name)
    if duration is not None:
        req.set_DurationSeconds(str(duration))
    if policy is not None:
        req.set_Policy(policy)
    with (
        _patched(parameter_helper, "get_iso_8061_date", lambda: timestamp),
        _patched(parameter_helper, "get_uuid", lambda: nonce),
    ):
        url = req.get_url(region, ak, sk)
    return url, req.string_to_sign


class _Captured(BaseException):
    """Raised from the patched transport to stop a Tea client before any I/O.

    A BaseException, so the client's retry loop (which catches Exception) lets it through.
    """

    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


def tea_sts_assume_role(
    *,
    ak: str,
    sk: str,
    token: str | None,
    now: _dt.datetime,
    nonce: str,
    role_arn: str,
    session_name: str,
    duration: int = 900,
    policy: str | None = None,
) -> dict[str, Any]:
    """The request alibabacloud-sts20150401 (Tea, ACS3-HMAC-SHA256) would send, unsent.

    Returns method, path, query (raw, as an HTTP client encodes it), headers and body.
    """

    def capture(request: Any, runtime: Any = None, **_: Any) -> Any:
        raise _Captured(request)

    cfg = Config(
        access_key_id=ak,
        access_key_secret=sk,
        security_token=token,
        endpoint="sts.cn-hangzhou.aliyuncs.com",
        region_id="cn-hangzhou",
    )
    client = StsClient(cfg)
    request = sts_models.AssumeRoleRequest(
        role_arn=role_arn, role_session_name=session_name, duration_seconds=duration, policy=policy
    )
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(DaraCore, "do_action", staticmethod(capture)))
        stack.enter_context(_patched(tea_utils.Utils, "get_timestamp", staticmethod(lambda: stamp)))
        stack.enter_context(_patched(tea_utils.Utils, "get_nonce", staticmethod(lambda: nonce)))
        try:
            client.assume_role(request)
        except _Captured as captured:
            sent = captured.request
    body = sent.body if isinstance(sent.body, bytes) else (sent.body or "").encode()
    return {
        "method": sent.method,
        "path": sent.pathname,
        "query": urlencode(sent.query, quote_via=quote),
        "headers": dict(sent.headers),
        "body": body,
    }
