"""STS request signatures: RPC "1.0" (HMAC-SHA1) and ACS3-HMAC-SHA256 (V3).

RPC 1.0::

    CanonicalQuery = sorted pe(k)=pe(v) joined by "&"     (all params but Signature)
    StringToSign   = METHOD & "%2F" & pe(CanonicalQuery)
    Signature      = Base64(HMAC-SHA1(secret + "&", StringToSign))

ACS3 (headers carry the action, version, date and nonce)::

    CanonicalRequest = METHOD \\n pct_path(path) \\n CanonicalQuery \\n
                       CanonicalHeaders \\n SignedHeaders \\n hex(sha256(body))
    StringToSign     = "ACS3-HMAC-SHA256" \\n hex(sha256(CanonicalRequest))
    Signature        = hex(HMAC-SHA256(secret, StringToSign))     (no "&" here)
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from .encoding import pct, pct_path
from .errors import SigningError
from .keys import SigningCredentials
from .request import EMPTY
from .timefmt import iso_extended, utc

RPC_SIGNATURE_METHOD = "HMAC-SHA1"
RPC_SIGNATURE_VERSION = "1.0"
ACS3_ALGORITHM = "ACS3-HMAC-SHA256"


def _check_call(method: str, action: str, version: str, nonce: str) -> None:
    if method not in ("GET", "POST"):
        raise SigningError("method", "must be GET or POST")
    if not action or not version:
        raise SigningError("action", "action and version must not be empty")
    if not nonce:
        raise SigningError("nonce", "must not be empty (a fresh value per request)")


@dataclass(frozen=True)
class RpcRequest:
    """An RPC-style call (e.g. STS AssumeRole) to sign with signature 1.0.

    ``params`` go in the query string; ``body_params`` (POST only) go in an
    ``application/x-www-form-urlencoded`` body. Both are signed. The signer adds the common
    parameters (AccessKeyId, Action, Format, SignatureMethod, SignatureNonce,
    SignatureVersion, Timestamp, Version and, for STS credentials, SecurityToken).
    """

    method: str
    action: str
    version: str
    credentials: SigningCredentials
    timestamp: datetime
    nonce: str
    params: Mapping[str, str] = EMPTY
    body_params: Mapping[str, str] = EMPTY
    format: str | None = "JSON"

    def __post_init__(self) -> None:
        _check_call(self.method, self.action, self.version, self.nonce)
        object.__setattr__(self, "timestamp", utc(self.timestamp, "timestamp"))
        if self.body_params and self.method != "POST":
            raise SigningError("body_params", "only a POST request has a body")


@dataclass(frozen=True)
class RpcSigned:
    """``query`` (sorted, ``Signature`` last) and ``body`` are ready to send as they are."""

    # Each carries the signature or the security token: none is shown in reprs.
    query: str = field(repr=False)
    body: str = field(repr=False)
    string_to_sign: str = field(repr=False)
    signature: str = field(repr=False)


def rpc_encode(params: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(pe(k), pe(v))`` pairs; encode once, then join as often as needed."""
    return [(pct(k), pct(v)) for k, v in params]


def rpc_canonical_query(encoded: Iterable[tuple[str, str]]) -> str:
    """Sorted ``k=v`` of already-encoded pairs (see :func:`rpc_encode`)."""
    return "&".join([f"{k}={v}" for k, v in sorted(encoded)])


def rpc_string_to_sign(method: str, encoded: Iterable[tuple[str, str]]) -> str:
    # pe() of an already-encoded query only has "%", "&" and "=" left to escape; three
    # replaces do that exactly, ~50x faster than quote() on a long string.
    query = rpc_canonical_query(encoded).replace("%", "%25")
    return f"{method}&%2F&{query.replace('&', '%26').replace('=', '%3D')}"


def rpc_signature(credentials: SigningCredentials, to_sign: str) -> str:
    return base64.b64encode(credentials.rpc_mac.digest(to_sign.encode("utf-8"))).decode("ascii")


def rpc_common_params(req: RpcRequest) -> dict[str, str]:
    common = {
        "AccessKeyId": req.credentials.access_key_id,
        "Action": req.action,
        "SignatureMethod": RPC_SIGNATURE_METHOD,
        "SignatureNonce": req.nonce,
        "SignatureVersion": RPC_SIGNATURE_VERSION,
        "Timestamp": iso_extended(req.timestamp),
        "Version": req.version,
    }
    if req.format is not None:
        common["Format"] = req.format
    if req.credentials.security_token:
        common["SecurityToken"] = req.credentials.security_token
    return common


def sign_rpc(req: RpcRequest) -> RpcSigned:
    query = {**req.params, **rpc_common_params(req)}
    overlap = query.keys() & req.body_params.keys()
    if overlap or "Signature" in query or "Signature" in req.body_params:
        raise SigningError(
            "params", "names must be unique across query and body; Signature is added by the signer"
        )
    in_query = rpc_encode(query.items())
    in_body = rpc_encode(req.body_params.items())
    to_sign = rpc_string_to_sign(req.method, [*in_query, *in_body])
    sig = rpc_signature(req.credentials, to_sign)
    body = "&".join([f"{k}={v}" for k, v in in_body])
    return RpcSigned(f"{rpc_canonical_query(in_query)}&Signature={pct(sig)}", body, to_sign, sig)


@dataclass(frozen=True)
class Acs3Request:
    """An ACS3-signed call. ``headers`` are extra headers to send and sign."""

    method: str
    host: str
    action: str
    version: str
    credentials: SigningCredentials
    timestamp: datetime
    nonce: str
    path: str = "/"
    query: Mapping[str, str] = EMPTY
    headers: Mapping[str, str] = EMPTY
    body: bytes = b""

    def __post_init__(self) -> None:
        _check_call(self.method, self.action, self.version, self.nonce)
        object.__setattr__(self, "timestamp", utc(self.timestamp, "timestamp"))
        if not self.host:
            raise SigningError("host", "must not be empty")


@dataclass(frozen=True)
class Acs3Signed:
    # The signature, and the security token among the signed headers: not in reprs.
    headers: Mapping[str, str] = field(repr=False)
    canonical_request: str = field(repr=False)
    string_to_sign: str
    signature: str = field(repr=False)


def acs3_signed_header_names(lower_headers: Mapping[str, str]) -> list[str]:
    """host, content-type and every x-acs-* header present, sorted."""
    return sorted(
        k for k in lower_headers if k in ("host", "content-type") or k.startswith("x-acs-")
    )


def acs3_canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    lower_headers: Mapping[str, str],
    *,
    signed: list[str],
    payload_hash: str,
) -> str:
    cq = rpc_canonical_query(rpc_encode(query))  # the same rule as RPC 1.0
    ch = "".join(f"{k}:{lower_headers.get(k, '').strip()}\n" for k in signed)
    return f"{method}\n{pct_path(path)}\n{cq}\n{ch}\n{';'.join(signed)}\n{payload_hash}"


def acs3_string_to_sign(canonical: str) -> str:
    return f"{ACS3_ALGORITHM}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def acs3_signature(credentials: SigningCredentials, to_sign: str) -> str:
    return credentials.sha256_mac.hexdigest(to_sign.encode("utf-8"))


def sign_acs3(req: Acs3Request) -> Acs3Signed:
    """All headers to send, ``Authorization`` included (lower-case names)."""
    headers = {k.lower(): v for k, v in req.headers.items()}
    headers.update(
        {
            "host": req.host,
            "x-acs-action": req.action,
            "x-acs-version": req.version,
            "x-acs-date": iso_extended(req.timestamp),
            "x-acs-signature-nonce": req.nonce,
            "x-acs-content-sha256": hashlib.sha256(req.body).hexdigest(),
        }
    )
    if req.credentials.security_token:
        headers["x-acs-security-token"] = req.credentials.security_token
    signed = acs3_signed_header_names(headers)
    canonical = acs3_canonical_request(
        req.method,
        req.path,
        req.query.items(),
        headers,
        signed=signed,
        payload_hash=headers["x-acs-content-sha256"],
    )
    to_sign = acs3_string_to_sign(canonical)
    sig = acs3_signature(req.credentials, to_sign)
    headers["authorization"] = (
        f"{ACS3_ALGORITHM} Credential={req.credentials.access_key_id},"
        f"SignedHeaders={';'.join(signed)},Signature={sig}"
    )
    return Acs3Signed(headers, canonical, to_sign, sig)
