"""Verification of incoming signed requests (for the emulator), MinIO-style.

Each entry point parses the request into a typed, frozen value, looks the access key up,
checks the security token, the time (expiry; clock skew of at most 15 minutes), then
recomputes the signature with the *same* primitives the signers use and compares in
constant time. Every failure is a :class:`~.errors.VerificationError` whose ``reason`` is
one row of the :class:`~.errors.Reason` table; a signature mismatch carries the server's
StringToSign (which OSS and STS echo back). That StringToSign may contain the security
token (V1 headers): return it to the caller, do not log it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import oss_v1, oss_v4, rpc
from .encoding import decode_query, pct
from .errors import Reason, VerificationError
from .keys import SigningCredentials, V4KeyCache, v4_cache
from .post_policy import sign_policy_v1, sign_policy_v4
from .timefmt import (
    MAX_EXPIRES,
    parse_http_date,
    parse_iso_basic,
    parse_iso_extended,
    parse_iso_millis,
    utc,
)

#: Returns the credentials an access key id stands for (with the token the issuer
#: handed out, for STS credentials), or None when the id is unknown.
CredentialLookup = Callable[[str], SigningCredentials | None]
MAX_SKEW = timedelta(minutes=15)


@dataclass(frozen=True)
class OssV1Auth:
    access_key_id: str
    signature: str = ""
    presigned: bool = False
    expires: int | None = None  # presigned: absolute epoch seconds


@dataclass(frozen=True)
class OssV4Auth:
    access_key_id: str
    day: str
    region: str
    product: str
    signature: str
    additional_headers: tuple[str, ...] = ()
    presigned: bool = False
    timestamp: str | None = None  # presigned: x-oss-date (headers carry their own)
    expires: int | None = None  # presigned: seconds after timestamp


@dataclass(frozen=True)
class _Incoming:
    """The parts of an incoming OSS request a signature covers (decoded)."""

    method: str
    bucket: str | None
    key: str | None
    params: dict[str, str]
    lower: dict[str, str]
    now: datetime


@dataclass(frozen=True)
class OssVerified:
    auth: OssV1Auth | OssV4Auth
    credentials: SigningCredentials


def _fail(reason: Reason, detail: str = "", **kw: Any) -> VerificationError:
    return VerificationError(reason, detail, **kw)


def _check_skew(when: datetime, now: datetime, reason: Reason) -> None:
    if abs(now - when) > MAX_SKEW:
        raise _fail(reason, "request time differs from server time by more than 15 minutes")


def _parse_credential(text: str) -> tuple[str, str, str, str]:
    parts = text.split("/")
    if len(parts) != 5 or parts[4] != "aliyun_v4_request" or not all(parts):
        raise _fail(
            Reason.OSS_MALFORMED, "credential must be AK/date/region/product/aliyun_v4_request"
        )
    return parts[0], parts[1], parts[2], parts[3]


def parse_oss_authorization(header: str) -> OssV1Auth | OssV4Auth:
    """``OSS AK:sig`` or ``OSS4-HMAC-SHA256 Credential=..,[AdditionalHeaders=..,]Signature=..``.

    V4 parameters may be separated by ``,`` or ``, `` and come in any order (oss2 and
    alibabacloud-oss-v2 differ).
    """
    scheme, _, rest = header.strip().partition(" ")
    if scheme == "OSS":
        ak, sep, sig = rest.strip().rpartition(":")
        if not sep or not ak or not sig:
            raise _fail(Reason.OSS_MALFORMED, "expected 'OSS AccessKeyId:Signature'")
        return OssV1Auth(ak, sig)
    if scheme == oss_v4.ALGORITHM:
        items = {}
        for part in rest.split(","):
            name, eq, value = part.strip().partition("=")
            if not eq:
                raise _fail(Reason.OSS_MALFORMED, "V4 parameters must be name=value")
            items[name] = value
        if "Credential" not in items or "Signature" not in items:
            raise _fail(Reason.OSS_MALFORMED, "V4 Authorization needs Credential and Signature")
        ak, day, region, product = _parse_credential(items["Credential"])
        extra = _additional_names(items.get("AdditionalHeaders"))
        return OssV4Auth(ak, day, region, product, items["Signature"], extra)
    raise _fail(Reason.OSS_MALFORMED, "unsupported Authorization scheme")


def _additional_names(text: str | None) -> tuple[str, ...]:
    """The header names of AdditionalHeaders: absent is none; present, each must be a name.

    OSS refuses an empty list, an empty item (``host;``) and a name with ``_``, before
    it looks at the signature.
    """
    if text is None:
        return ()
    names = tuple(text.split(";"))
    for name in names:
        if not name or "_" in name or name != name.strip():
            raise _fail(Reason.OSS_BAD_ADDITIONAL_HEADER, "an additional header name is invalid")
    return names


def _check_additional_present(names: tuple[str, ...], lower: Mapping[str, str]) -> None:
    """Every header the signature lists must be in the request (its value is then signed).

    A missing header is refused as OSS refuses it, not left to a signature mismatch: a
    URL that signed ``content-length`` must be sent with exactly that Content-Length.
    """
    for name in names:
        if name.lower() not in lower:
            raise _fail(
                Reason.OSS_BAD_ADDITIONAL_HEADER,
                f"the signature lists header {name.lower()!r}, which the request lacks",
            )


def _int(text: str | None, what: str) -> int:
    try:
        return int(text or "")
    except ValueError:
        raise _fail(Reason.OSS_MALFORMED, f"{what} must be an integer") from None


def parse_oss_query(query: Mapping[str, str]) -> OssV1Auth | OssV4Auth | None:
    """The query-signature parameters of a presigned URL, or None when there are none."""
    if "x-oss-signature" in query or "x-oss-credential" in query:
        if query.get("x-oss-signature-version") != oss_v4.ALGORITHM:
            raise _fail(Reason.OSS_MALFORMED, "x-oss-signature-version must be OSS4-HMAC-SHA256")
        ak, day, region, product = _parse_credential(query.get("x-oss-credential", ""))
        extra = _additional_names(query.get("x-oss-additional-headers"))
        return OssV4Auth(
            ak,
            day,
            region,
            product,
            query.get("x-oss-signature", ""),
            extra,
            True,
            query.get("x-oss-date", ""),
            _int(query.get("x-oss-expires"), "x-oss-expires"),
        )
    if "Signature" in query or "OSSAccessKeyId" in query:
        if not query.get("OSSAccessKeyId") or not query.get("Signature"):
            raise _fail(Reason.OSS_MALFORMED, "OSSAccessKeyId, Expires and Signature go together")
        return OssV1Auth(
            query["OSSAccessKeyId"], query["Signature"], True, _int(query.get("Expires"), "Expires")
        )
    return None


def _lookup(lookup: CredentialLookup, ak: str, reason: Reason) -> SigningCredentials:
    creds = lookup(ak)
    if creds is None:
        raise _fail(reason, "unknown access key id", access_key_id=ak)
    return creds


def _check_token(creds: SigningCredentials, provided: str | None, reason: Reason) -> None:
    expected = creds.security_token or ""
    if not hmac.compare_digest((provided or "").encode("utf-8"), expected.encode("utf-8")):
        raise _fail(
            reason,
            "security token missing or not the one issued with this key",
            access_key_id=creds.access_key_id,
        )


def _compare(provided: str, expected: str, to_sign: str, reason: Reason, ak: str) -> None:
    if not hmac.compare_digest(provided.encode("utf-8"), expected.encode("utf-8")):
        raise _fail(
            reason,
            "signature mismatch",
            string_to_sign=to_sign,
            signature_provided=provided,
            access_key_id=ak,
        )


def verify_oss(
    *,
    method: str,
    bucket: str | None,
    key: str | None,
    query: str,
    headers: Mapping[str, str],
    now: datetime,
    lookup: CredentialLookup,
    region: str,
    cache: V4KeyCache | None = None,
) -> OssVerified:
    """Verify an OSS request signed in its headers or its query (V1 or V4).

    ``bucket``/``key`` are decoded (from the Host or path as the emulator routes them);
    ``query`` is the raw query string as received; ``region`` is the emulator's region.
    """
    now = utc(now)
    params = dict(decode_query(query, plus_is_space=True))
    lower = {k.lower(): v for k, v in headers.items()}
    auth: OssV1Auth | OssV4Auth | None
    if "authorization" in lower:
        auth = parse_oss_authorization(lower["authorization"])
    else:
        auth = parse_oss_query(params)
    if auth is None:
        raise _fail(Reason.OSS_MISSING_AUTH, "no Authorization header nor signed query")
    creds = _lookup(lookup, auth.access_key_id, Reason.OSS_UNKNOWN_ACCESS_KEY)
    incoming = _Incoming(method, bucket, key, params, lower, now)
    if isinstance(auth, OssV1Auth):
        _verify_v1(auth, creds, incoming)
    else:
        _verify_v4(auth, creds, incoming, region, cache)
    return OssVerified(auth, creds)


def _verify_v1(auth: OssV1Auth, creds: SigningCredentials, req: _Incoming) -> None:
    params, lower, now = req.params, req.lower, req.now
    if auth.presigned:
        token = params.get("security-token")
    else:
        # alibabacloud-oss-v2's V1 header signer sends an (unsigned) `security-token`
        # header instead of `x-oss-security-token`; accept both so that SDK works too.
        token = lower.get("x-oss-security-token") or lower.get("security-token")
    _check_token(creds, token, Reason.OSS_INVALID_SECURITY_TOKEN)
    if auth.presigned:
        assert auth.expires is not None
        if now.timestamp() > auth.expires:
            raise _fail(Reason.OSS_EXPIRED, "presigned URL has expired")
        date = str(auth.expires)
        for name in ("OSSAccessKeyId", "Expires", "Signature"):
            params.pop(name, None)
    else:
        date = lower.get("x-oss-date") or lower.get("date", "")
        try:
            _check_skew(parse_http_date(date), now, Reason.OSS_TIME_SKEWED)
        except (TypeError, ValueError):
            raise _fail(Reason.OSS_MALFORMED, "Date must be an RFC 1123 date") from None
    to_sign = oss_v1.string_to_sign(
        req.method, lower, date, oss_v1.canonical_resource(req.bucket, req.key, params)
    )
    _compare(
        auth.signature,
        oss_v1.signature(creds, to_sign),
        to_sign,
        Reason.OSS_SIGNATURE_MISMATCH,
        auth.access_key_id,
    )


def _verify_v4(
    auth: OssV4Auth,
    creds: SigningCredentials,
    req: _Incoming,
    region: str,
    cache: V4KeyCache | None,
) -> None:
    params, lower, now = req.params, req.lower, req.now
    if auth.region != region:
        raise _fail(Reason.OSS_BAD_REGION, "credential scope names another region")
    if auth.product != "oss":
        raise _fail(Reason.OSS_MALFORMED, "credential scope product must be oss")
    _check_additional_present(auth.additional_headers, lower)
    source = params if auth.presigned else lower
    _check_token(creds, source.get("x-oss-security-token"), Reason.OSS_INVALID_SECURITY_TOKEN)
    stamp = auth.timestamp if auth.presigned else lower.get("x-oss-date", "")
    try:
        when = parse_iso_basic(stamp or "")
    except ValueError:
        raise _fail(Reason.OSS_MALFORMED, "x-oss-date must be YYYYMMDDTHHMMSSZ") from None
    if stamp is None or stamp[:8] != auth.day:
        raise _fail(Reason.OSS_MALFORMED, "credential date differs from x-oss-date")
    if auth.presigned:
        assert auth.expires is not None
        if not 1 <= auth.expires <= MAX_EXPIRES:
            raise _fail(Reason.OSS_BAD_EXPIRES)
        if now > when + timedelta(seconds=auth.expires):
            raise _fail(Reason.OSS_EXPIRED, "presigned URL has expired")
        if when - now > MAX_SKEW:
            raise _fail(Reason.OSS_TIME_SKEWED, "x-oss-date is in the future")
        params.pop("x-oss-signature", None)
    else:
        _check_skew(when, now, Reason.OSS_TIME_SKEWED)
    signing_key = v4_cache(cache).get(creds, auth.day, auth.region, auth.product)
    canonical = oss_v4.canonical_request(
        req.method,
        oss_v4.canonical_uri(req.bucket, req.key),
        [(pct(k), pct(v)) for k, v in params.items()],
        lower,
        list(auth.additional_headers),
    )
    to_sign = oss_v4.string_to_sign(stamp, signing_key.scope, canonical)
    _compare(
        auth.signature,
        oss_v4.signature(signing_key, to_sign),
        to_sign,
        Reason.OSS_SIGNATURE_MISMATCH,
        auth.access_key_id,
    )


# --- PostObject ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PostVerified:
    access_key_id: str
    key: str
    policy: Mapping[str, Any]
    credentials: SigningCredentials


def verify_post_form(
    *,
    bucket: str,
    fields: Mapping[str, str],
    content_length: int,
    now: datetime,
    lookup: CredentialLookup,
    region: str,
    cache: V4KeyCache | None = None,
) -> PostVerified:
    """Verify a PostObject form (field names case-insensitive) and enforce its policy."""
    now = utc(now)
    form = {k.lower(): v for k, v in fields.items()}
    policy = form.get("policy")
    if not policy:
        raise _fail(Reason.OSS_MISSING_AUTH, "no policy field")
    if "x-oss-signature" in form:
        if form.get("x-oss-signature-version") != oss_v4.ALGORITHM:
            raise _fail(Reason.OSS_MALFORMED, "x-oss-signature-version must be OSS4-HMAC-SHA256")
        ak, day, scope_region, product = _parse_credential(form.get("x-oss-credential", ""))
        if scope_region != region:
            raise _fail(Reason.OSS_BAD_REGION, "credential scope names another region")
        if product != "oss":
            raise _fail(Reason.OSS_MALFORMED, "credential scope product must be oss")
        _check_post_date(form.get("x-oss-date", ""), day, now)
        creds = _lookup(lookup, ak, Reason.OSS_UNKNOWN_ACCESS_KEY)
        _check_token(creds, form.get("x-oss-security-token"), Reason.OSS_INVALID_SECURITY_TOKEN)
        signing_key = v4_cache(cache).get(creds, day, scope_region, product)
        _compare(
            form["x-oss-signature"],
            sign_policy_v4(signing_key, policy),
            policy,
            Reason.OSS_SIGNATURE_MISMATCH,
            ak,
        )
    else:
        ak = form.get("ossaccesskeyid", "")
        if not ak or "signature" not in form:
            raise _fail(Reason.OSS_MALFORMED, "OSSAccessKeyId and Signature are required")
        creds = _lookup(lookup, ak, Reason.OSS_UNKNOWN_ACCESS_KEY)
        _check_token(creds, form.get("x-oss-security-token"), Reason.OSS_INVALID_SECURITY_TOKEN)
        _compare(
            form["signature"],
            sign_policy_v1(creds, policy),
            policy,
            Reason.OSS_SIGNATURE_MISMATCH,
            ak,
        )
    document = _decode_policy(policy)
    try:
        expiration = parse_iso_millis(str(document["expiration"]))
    except (KeyError, ValueError):
        raise _fail(Reason.OSS_POLICY_MALFORMED, "expiration missing or malformed") from None
    if now > expiration:
        raise _fail(Reason.OSS_POLICY_EXPIRED)
    conditions = document.get("conditions")
    if not isinstance(conditions, list):
        raise _fail(Reason.OSS_POLICY_MALFORMED, "conditions must be a list")
    for condition in conditions:
        try:
            _check_condition(condition, form, bucket, content_length)
        except (AttributeError, TypeError, ValueError):  # e.g. a range bound "ten"
            raise _fail(Reason.OSS_POLICY_MALFORMED, "a condition is malformed") from None
    return PostVerified(ak, form.get("key", ""), document, creds)


def _check_post_date(stamp: str, day: str, now: datetime) -> None:
    """POST V4: x-oss-date is the credential's day, at most 15 minutes ahead of the
    server, and a form lives at most 7 days from it (the policy may say less)."""
    try:
        when = parse_iso_basic(stamp)
    except ValueError:
        raise _fail(Reason.OSS_MALFORMED, "x-oss-date must be YYYYMMDDTHHMMSSZ") from None
    if stamp[:8] != day:
        raise _fail(Reason.OSS_MALFORMED, "credential date differs from x-oss-date")
    if when - now > MAX_SKEW:
        raise _fail(Reason.OSS_TIME_SKEWED, "x-oss-date is in the future")
    if now - when > timedelta(seconds=MAX_EXPIRES):
        raise _fail(Reason.OSS_EXPIRED, "x-oss-date is more than 7 days old")


def _decode_policy(policy: str) -> dict[str, Any]:
    try:
        document = json.loads(base64.b64decode(policy, validate=True))
    except (binascii.Error, ValueError):
        raise _fail(Reason.OSS_POLICY_MALFORMED) from None
    if not isinstance(document, dict):
        raise _fail(Reason.OSS_POLICY_MALFORMED, "policy must be a JSON object")
    return document


def _check_condition(condition: Any, form: Mapping[str, str], bucket: str, length: int) -> None:
    def value_of(name: str) -> str:
        name = name.lower().removeprefix("$")
        return bucket if name == "bucket" else form.get(name, "")

    if isinstance(condition, dict) and len(condition) == 1:
        ((name, expected),) = condition.items()
        ok, label = value_of(name) == expected, name
    elif isinstance(condition, list) and len(condition) == 3:
        op, name, arg = condition
        label = f"{op} {name}"
        if op == "content-length-range":
            ok = int(name) <= length <= int(arg)
        elif op == "eq":
            ok = value_of(name) == arg
        elif op == "starts-with":
            ok = value_of(name).startswith(str(arg))
        elif op in ("in", "not-in") and isinstance(arg, list):
            ok = (value_of(name) in arg) == (op == "in")
        else:
            raise _fail(Reason.OSS_POLICY_MALFORMED, f"unknown condition {op!r}")
    else:
        raise _fail(Reason.OSS_POLICY_MALFORMED, "a condition is a 1-item object or a triple")
    if not ok:
        raise _fail(Reason.OSS_POLICY_CONDITION, f"condition failed: {label}")


# --- STS: RPC 1.0 and ACS3 -----------------------------------------------------------------


@dataclass(frozen=True)
class RpcAuth:
    access_key_id: str
    signature: str
    timestamp: str
    nonce: str
    security_token: str | None


@dataclass(frozen=True)
class StsVerified:
    access_key_id: str
    params: Mapping[str, str]  # query and body parameters (RPC) or query (ACS3), decoded
    credentials: SigningCredentials


def _check_sts_time(stamp: str, now: datetime) -> None:
    try:
        when = parse_iso_extended(stamp)
    except ValueError:
        raise _fail(Reason.STS_TIMESTAMP_FORMAT) from None
    _check_skew(when, now, Reason.STS_TIMESTAMP_EXPIRED)


def verify_rpc(
    *,
    method: str,
    query: str,
    body: str,
    now: datetime,
    lookup: CredentialLookup,
    nonce_seen: Callable[[str], bool] | None = None,
) -> StsVerified:
    """Verify an RPC 1.0 request; ``body`` is the raw form body ('' for GET).

    ``nonce_seen(nonce)`` (optional) records a nonce and says whether it was used before;
    it is called only once the signature is good, so forgeries cannot burn nonces.
    """
    now = utc(now)
    pairs = decode_query(query, plus_is_space=True) + decode_query(body, plus_is_space=True)
    params = dict(pairs)
    if len(params) != len(pairs):
        raise _fail(Reason.STS_UNSUPPORTED, "a parameter appears twice")
    for name in ("AccessKeyId", "Signature", "SignatureNonce", "Timestamp"):
        if not params.get(name):
            raise _fail(Reason.STS_MISSING, f"missing {name}")
    if (params.get("SignatureMethod"), params.get("SignatureVersion")) != (
        rpc.RPC_SIGNATURE_METHOD,
        rpc.RPC_SIGNATURE_VERSION,
    ):
        raise _fail(Reason.STS_UNSUPPORTED, "SignatureMethod must be HMAC-SHA1, version 1.0")
    auth = RpcAuth(
        params["AccessKeyId"],
        params.pop("Signature"),
        params["Timestamp"],
        params["SignatureNonce"],
        params.get("SecurityToken"),
    )
    _check_sts_time(auth.timestamp, now)
    creds = _lookup(lookup, auth.access_key_id, Reason.STS_UNKNOWN_ACCESS_KEY)
    _check_token(creds, auth.security_token, Reason.STS_INVALID_SECURITY_TOKEN)
    to_sign = rpc.rpc_string_to_sign(method, rpc.rpc_encode(params.items()))
    _compare(
        auth.signature,
        rpc.rpc_signature(creds, to_sign),
        to_sign,
        Reason.STS_SIGNATURE_MISMATCH,
        auth.access_key_id,
    )
    if nonce_seen is not None and nonce_seen(auth.nonce):
        raise _fail(Reason.STS_NONCE_USED)
    return StsVerified(auth.access_key_id, params, creds)


@dataclass(frozen=True)
class Acs3Auth:
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_acs3_authorization(header: str) -> Acs3Auth:
    scheme, _, rest = header.strip().partition(" ")
    if scheme != rpc.ACS3_ALGORITHM:
        raise _fail(Reason.STS_UNSUPPORTED, "Authorization scheme must be ACS3-HMAC-SHA256")
    items = dict(part.strip().partition("=")[::2] for part in rest.split(","))
    if not items.get("Credential") or not items.get("Signature") or not items.get("SignedHeaders"):
        raise _fail(Reason.STS_UNSUPPORTED, "Credential, SignedHeaders and Signature required")
    return Acs3Auth(
        items["Credential"], tuple(items["SignedHeaders"].split(";")), items["Signature"]
    )


def verify_acs3(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    lookup: CredentialLookup,
    nonce_seen: Callable[[str], bool] | None = None,
) -> StsVerified:
    """Verify an ACS3-HMAC-SHA256 request (``path`` decoded, ``query`` raw)."""
    now = utc(now)
    lower = {k.lower(): v for k, v in headers.items()}
    if "authorization" not in lower:
        raise _fail(Reason.STS_MISSING, "missing Authorization")
    auth = parse_acs3_authorization(lower["authorization"])
    required = {
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    }
    # Every x-acs-* header sent (the token included) must be signed, not just the basics.
    must_sign = required | set(rpc.acs3_signed_header_names(lower))
    missing = sorted((must_sign - set(auth.signed_headers)) | (required - lower.keys()))
    if missing:
        raise _fail(Reason.STS_MISSING, "unsigned or missing headers: " + ";".join(missing))
    _check_sts_time(lower["x-acs-date"], now)
    if not hmac.compare_digest(lower["x-acs-content-sha256"], hashlib.sha256(body).hexdigest()):
        raise _fail(Reason.STS_SIGNATURE_MISMATCH, "x-acs-content-sha256 is not the body's hash")
    creds = _lookup(lookup, auth.access_key_id, Reason.STS_UNKNOWN_ACCESS_KEY)
    _check_token(creds, lower.get("x-acs-security-token"), Reason.STS_INVALID_SECURITY_TOKEN)
    params = decode_query(query)
    canonical = rpc.acs3_canonical_request(
        method,
        path,
        params,
        lower,
        signed=list(auth.signed_headers),
        payload_hash=lower["x-acs-content-sha256"],
    )
    to_sign = rpc.acs3_string_to_sign(canonical)
    _compare(
        auth.signature,
        rpc.acs3_signature(creds, to_sign),
        to_sign,
        Reason.STS_SIGNATURE_MISMATCH,
        auth.access_key_id,
    )
    if nonce_seen is not None and nonce_seen(lower["x-acs-signature-nonce"]):
        raise _fail(Reason.STS_NONCE_USED)
    return StsVerified(auth.access_key_id, dict(params), creds)
