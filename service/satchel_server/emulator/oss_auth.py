"""OSS authentication: the signing core verifies, this module supplies keys and maps errors.

Access keys resolve to a RAM user (the account's owner key) or an STS session. An expired
session is refused as `SecurityTokenExpired` before its signature is even looked at, as OSS
does; a session key with a token that is not its own is `InvalidSecurityToken`.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import NoReturn

from aiohttp import web

from satchel_server.emulator.accounts import Bucket, Session
from satchel_server.emulator.errors import OssError
from satchel_server.emulator.oss_access import Principal
from satchel_server.emulator.oss_addressing import Target
from satchel_server.emulator.oss_post import PostForm
from satchel_server.emulator.state import EmulatorState
from satchel_server.signing import (
    CredentialLookup,
    Reason,
    SigningCredentials,
    VerificationError,
    verify_oss,
    verify_post_form,
)


def _lookup(state: EmulatorState, now: float) -> CredentialLookup:
    def lookup(access_key_id: str) -> SigningCredentials | None:
        user = state.directory.user_by_key(access_key_id)
        if user is not None:
            return SigningCredentials(access_key_id, user.access_key_secret)
        session = state.directory.session_by_key(access_key_id)
        if session is None:
            return None
        if session.expiration <= now:
            raise OssError("SecurityTokenExpired")
        return SigningCredentials(access_key_id, session.access_key_secret, session.security_token)

    return lookup


def _principal(state: EmulatorState, access_key_id: str) -> Principal:
    user = state.directory.user_by_key(access_key_id)
    if user is not None:
        return Principal(user.account_id)
    session: Session | None = state.directory.session_by_key(access_key_id)
    if session is None:  # the lookup just found it; only a race with pruning gets here
        raise OssError("InvalidAccessKeyId")
    return Principal(session.role.account_id, session)


def as_oss_error(error: VerificationError) -> OssError:
    extra: dict[str, str] = {}
    if error.reason is Reason.OSS_SIGNATURE_MISMATCH:
        # OSS echoes these so a client can diff its own StringToSign; none is a secret key.
        extra = {
            "StringToSign": error.string_to_sign or "",
            "SignatureProvided": error.signature_provided or "",
            "OSSAccessKeyId": error.access_key_id or "",
        }
    return OssError(error.code, error.message, extra=extra, status=error.status)


def _raise(error: VerificationError) -> NoReturn:
    raise as_oss_error(error) from None


def authenticate(
    state: EmulatorState, request: web.Request, target: Target, now: float
) -> Principal:
    """Verify a header- or query-signed request against the bucket's region."""
    bucket = state.directory.bucket(target.bucket or "")
    region = bucket.region if bucket else ""
    _, _, raw_query = request.raw_path.partition("?")
    try:
        verified = verify_oss(
            method=request.method,
            bucket=target.bucket,
            key=target.key,
            query=raw_query,
            headers=request.headers,
            now=datetime.fromtimestamp(now, UTC),
            lookup=_lookup(state, now),
            region=region,
        )
    except VerificationError as error:
        _raise(error)
    return _principal(state, verified.credentials.access_key_id)


def authenticate_post(
    state: EmulatorState, bucket: Bucket, form: PostForm, now: float
) -> Principal:
    """Verify a PostObject form's signature and enforce its policy (with the file's size)."""
    try:
        verified = verify_post_form(
            bucket=bucket.name,
            fields=form.fields,
            content_length=len(form.file_data),
            now=datetime.fromtimestamp(now, UTC),
            lookup=_lookup(state, now),
            region=bucket.region,
        )
    except VerificationError as error:
        if "content-length-range" in error.detail:
            # OSS names the size failure itself rather than a generic policy failure.
            raise OssError(_size_code(form)) from None
        _raise(error)
    return _principal(state, verified.access_key_id)


def _size_code(form: PostForm) -> str:
    """EntityTooSmall or EntityTooLarge, from the (already verified) policy's range."""
    try:
        document = json.loads(base64.b64decode(form.field("policy") or ""))
        for condition in document.get("conditions", []):
            if (
                isinstance(condition, list)
                and condition[0] == "content-length-range"
                and len(form.file_data) < int(condition[1])
            ):
                return "EntityTooSmall"
    except (ValueError, TypeError, IndexError, AttributeError):
        pass
    return "EntityTooLarge"
