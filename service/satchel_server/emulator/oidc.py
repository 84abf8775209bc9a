"""The emulator's OIDC identity providers: they issue RS256 tokens and STS verifies them.

A provider plays both parts that RRSA splits between a cluster and RAM: it holds an RSA key
and mints tokens (as the cluster's service-account issuer does), and STS's
AssumeRoleWithOIDC checks a token against the provider's public key, issuer, client ids
(audiences) and expiry, as RAM does with the provider registered in the account.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MAX_TOKEN_CHARS = 20_000  # STS accepts OIDCToken of 4..20000 characters


INVALID = "AuthenticationFail.OIDCToken.Invalid"


class OidcTokenError(Exception):
    """A token STS refuses: `code` is the STS error code, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    if not text or any(c not in _B64URL for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def sign_rs256(claims: Mapping[str, object], key: rsa.RSAPrivateKey, kid: str) -> str:
    """A compact JWS (header.payload.signature) of `claims`, signed RS256."""
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
    payload = _b64url(json.dumps(dict(claims)).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64url(signature)}"


@dataclass(frozen=True)
class VerifiedToken:
    """What a trust policy's `oidc:` conditions see: the audience is the one the provider knows."""

    issuer: str
    audience: str
    subject: str
    claims: Mapping[str, object] = field(repr=False)


@dataclass(frozen=True)
class OidcProvider:
    account_id: str
    name: str
    issuer: str
    client_ids: tuple[str, ...]
    kid: str
    key: rsa.RSAPrivateKey = field(repr=False)

    @property
    def arn(self) -> str:
        return f"acs:ram::{self.account_id}:oidc-provider/{self.name}"

    def mint(self, subject: str, audience: str, issued_at: float, ttl_seconds: float) -> str:
        """A token as the cluster's issuer would project it into a pod."""
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": int(issued_at),
            "nbf": int(issued_at),
            "exp": int(issued_at + ttl_seconds),
        }
        return sign_rs256(claims, self.key, self.kid)

    def verify(self, token: str, now: float) -> VerifiedToken:
        """The token's claims, once signature, issuer, audience and times all check out."""
        claims = _verified_claims(token, self.key.public_key(), self.kid)
        if claims.get("iss") != self.issuer:
            raise OidcTokenError("AuthenticationFail.OIDCToken.IssuerNotMatch", "Invalid issuer.")
        audiences = claims.get("aud")
        listed = [audiences] if isinstance(audiences, str) else audiences
        known = [a for a in self.client_ids if isinstance(listed, list) and a in listed]
        if not known:
            raise OidcTokenError(
                "AuthenticationFail.OIDCToken.AudienceNotMatch", "Invalid audience."
            )
        expires = _numeric_date(claims.get("exp"))
        not_before = _numeric_date(claims.get("nbf", claims.get("iat", 0)))
        if expires is None or not_before is None:
            raise OidcTokenError(INVALID, "exp and iat must be numbers.")
        if now >= expires:
            raise OidcTokenError(
                "AuthenticationFail.OIDCToken.Expired", "This JsonWebToken is expired."
            )
        if now < not_before:
            raise OidcTokenError(INVALID, "The token is not valid yet.")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise OidcTokenError(INVALID, "The token has no subject.")
        return VerifiedToken(self.issuer, known[0], subject, claims)


def _numeric_date(value: object) -> float | None:
    """A NumericDate claim's seconds; None for a boolean, a string, NaN or an infinity."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _verified_claims(token: str, public_key: rsa.RSAPublicKey, kid: str) -> dict[str, object]:
    if not 4 <= len(token) <= MAX_TOKEN_CHARS:
        raise OidcTokenError(INVALID, "The OIDCToken length is out of range.")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise OidcTokenError(
            INVALID, "The number of Jwt field should be divided into 3 parts with '.' ."
        )
    try:
        header = json.loads(_unb64url(parts[0]))
        claims = json.loads(_unb64url(parts[1]), parse_constant=_refuse_constant)
        signature = _unb64url(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise OidcTokenError(INVALID, "The Jwt content cannot be recognized.") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise OidcTokenError(INVALID, "The Jwt content is invalid that cannot be recognized.")
    if header.get("alg") != "RS256":
        # "none", HS256 (a public key used as an HMAC secret) and the rest: never accepted.
        raise OidcTokenError(INVALID, "The algorithm in the Jwt header is not RS256.")
    if header.get("kid", kid) != kid:
        raise OidcTokenError(
            "AuthenticationFail.OIDCToken.InvalidSignature", "No key of the provider has this kid."
        )
    try:
        public_key.verify(
            signature, f"{parts[0]}.{parts[1]}".encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        raise OidcTokenError(
            "AuthenticationFail.OIDCToken.InvalidSignature",
            "OIDC token validate failed: invalid signature.",
        ) from None
    return claims


@functools.cache
def _process_key() -> rsa.RSAPrivateKey:
    # Generating a 2048-bit key takes tens of milliseconds: once per process, not per start.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def new_provider(
    account_id: str, name: str, issuer: str, client_ids: tuple[str, ...], key_pem: bytes | None
) -> OidcProvider:
    """A provider with the given key (PEM, PKCS#8), or this process's own generated one."""
    if key_pem is None:
        key = _process_key()
    else:
        loaded = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError("an OIDC provider's key must be RSA")
        key = loaded
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = _b64url(hashlib.sha256(public).digest()[:12])  # stable for a key, like a JWK thumbprint
    return OidcProvider(account_id, name, issuer, client_ids, kid, key)
