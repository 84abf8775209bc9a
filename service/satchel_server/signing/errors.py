"""Errors of the signing core.

Two kinds, kept apart because their audiences differ:

* :class:`SigningError` -- the *caller* passed something we refuse to sign (a programming or
  validation error on our side of the wire). It is a ``ValueError`` naming the offending
  ``field`` and the ``rule`` it broke. It never carries the value itself: values may be
  secrets or tokens.
* :class:`VerificationError` -- an *incoming* request (seen by the emulator) failed
  verification. It carries a :class:`Reason`, one row of a single table that maps each
  failure to the error code, HTTP status and message the real service returns, so that the
  emulator renders every rejection in one place and the official SDKs see what they expect.
"""

from __future__ import annotations

import enum


class SigningError(ValueError):
    """Refusal to sign: ``field`` names the input, ``rule`` says what it must satisfy."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class Reason(enum.Enum):
    """Why verification failed: ``(service code, HTTP status, message)``.

    OSS codes follow the OSS error reference; an expired presigned URL or POST policy is
    ``AccessDenied`` there (not a dedicated code), which is what the SDKs expect. STS codes
    follow the POP gateway's (``InvalidTimeStamp.Expired``, ``SignatureNonceUsed`` ...).
    """

    # --- OSS -------------------------------------------------------------------------
    OSS_SIGNATURE_MISMATCH = (
        "SignatureDoesNotMatch",
        403,
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    )
    OSS_EXPIRED = ("AccessDenied", 403, "Request has expired.")
    OSS_TIME_SKEWED = (
        "RequestTimeTooSkewed",
        403,
        "The difference between the request time and the current time is too large.",
    )
    OSS_UNKNOWN_ACCESS_KEY = (
        "InvalidAccessKeyId",
        403,
        "The OSS Access Key Id you provided does not exist in our records.",
    )
    OSS_INVALID_SECURITY_TOKEN = (
        "InvalidSecurityToken",
        403,
        "The security token you provided is invalid.",
    )
    OSS_MALFORMED = ("InvalidArgument", 400, "Authorization information is malformed.")
    OSS_BAD_REGION = ("InvalidArgument", 400, "Invalid signing region in Authorization.")
    OSS_BAD_EXPIRES = ("InvalidArgument", 400, "x-oss-expires must be 1..604800 seconds.")
    # A name in AdditionalHeaders (x-oss-additional-headers) that is empty, has an
    # underscore, or names a header the request does not carry (OSS's EC 0002-00000078,
    # -00000210, -00000211): the signature is never even computed.
    OSS_BAD_ADDITIONAL_HEADER = (
        "InvalidArgument",
        400,
        "The additional headers list a header that is empty, invalid or not in the request.",
    )
    OSS_MISSING_AUTH = ("AccessDenied", 403, "Anonymous access is forbidden for this operation.")
    OSS_POLICY_EXPIRED = ("AccessDenied", 403, "Invalid according to Policy: Policy expired.")
    OSS_POLICY_CONDITION = (
        "AccessDenied",
        403,
        "Invalid according to Policy: Policy Condition failed.",
    )
    OSS_POLICY_MALFORMED = ("InvalidPolicyDocument", 400, "Invalid Policy: Invalid JSON.")
    # --- STS (RPC 1.0 and ACS3) ------------------------------------------------------------
    STS_SIGNATURE_MISMATCH = (
        "SignatureDoesNotMatch",
        400,
        "Specified signature is not matched with our calculation.",
    )
    STS_TIMESTAMP_EXPIRED = (
        "InvalidTimeStamp.Expired",
        400,
        "Specified time stamp or date value is expired.",
    )
    STS_TIMESTAMP_FORMAT = (
        "InvalidTimeStamp.Format",
        400,
        "Specified time stamp or date value is not well formatted.",
    )
    STS_UNKNOWN_ACCESS_KEY = (
        "InvalidAccessKeyId.NotFound",
        404,
        "Specified access key is not found.",
    )
    STS_INVALID_SECURITY_TOKEN = (
        "InvalidSecurityToken.Malformed",
        400,
        "Specified SecurityToken is malformed.",
    )
    STS_NONCE_USED = ("SignatureNonceUsed", 400, "Specified signature nonce was used already.")
    STS_MISSING = ("MissingParameter", 400, "A required signing parameter is missing.")
    STS_UNSUPPORTED = (
        "IncompleteSignature",
        400,
        "The request signature does not conform to Aliyun standards.",
    )

    @property
    def code(self) -> str:
        return str(self.value[0])

    @property
    def status(self) -> int:
        return int(self.value[1])

    @property
    def message(self) -> str:
        return str(self.value[2])


class VerificationError(Exception):
    """An incoming request failed verification.

    ``detail`` says what differed (safe to log: never a secret or a token);
    ``string_to_sign`` is the server-side StringToSign, which OSS and STS echo back in
    their SignatureDoesNotMatch errors so a client can diff it with its own;
    ``signature_provided`` is what the client sent.
    """

    def __init__(
        self,
        reason: Reason,
        detail: str = "",
        *,
        string_to_sign: str | None = None,
        signature_provided: str | None = None,
        access_key_id: str | None = None,
    ) -> None:
        super().__init__(f"{reason.code}: {detail or reason.message}")
        self.reason = reason
        self.detail = detail
        self.string_to_sign = string_to_sign
        self.signature_provided = signature_provided
        self.access_key_id = access_key_id

    @property
    def code(self) -> str:
        return self.reason.code

    @property
    def status(self) -> int:
        return self.reason.status

    @property
    def message(self) -> str:
        return self.reason.message
