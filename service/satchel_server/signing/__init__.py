"""Satchel's signing core: pure (stdlib only, no I/O, no clock reads).

Credentials, time and nonces are always passed in. Public API:

Values
    :class:`SigningCredentials` (secrets ``repr=False``), :class:`OssEndpoint`,
    :class:`OssRequest` (the one context every OSS signer takes),
    :class:`SignedHeaders`, :class:`PresignedUrl`, :class:`V4KeyCache`.
OSS V1 / V4 (modules ``oss_v1``, ``oss_v4``; each has ``sign_header`` and ``presign``)
    :func:`presign_v1`, :func:`presign_v4`, :func:`sign_header_v1`, :func:`sign_header_v4`;
    the V4 steps ``oss_v4.canonical_request`` / ``string_to_sign`` / ``signature``.
PostObject
    :class:`PostPolicyRequest`, :class:`PostForm`, :func:`post_form_v1`, :func:`post_form_v4`.
STS
    :class:`RpcRequest` + :func:`sign_rpc` (signature 1.0 -> :class:`RpcSigned`),
    :class:`Acs3Request` + :func:`sign_acs3` (ACS3-HMAC-SHA256 -> :class:`Acs3Signed`).
Verification (for the emulator)
    :func:`verify_oss`, :func:`verify_post_form`, :func:`verify_rpc`, :func:`verify_acs3`,
    the parsers :func:`parse_oss_authorization`, :func:`parse_oss_query`,
    :func:`parse_acs3_authorization` and the typed results they return.
Errors
    :class:`SigningError` (``.field``, ``.rule``), :class:`VerificationError`
    (``.reason``, ``.code``, ``.status``, ``.string_to_sign``), :class:`Reason` (the table).
"""

from .errors import Reason, SigningError, VerificationError
from .keys import SigningCredentials, V4KeyCache
from .oss_v1 import presign as presign_v1
from .oss_v1 import sign_header as sign_header_v1
from .oss_v4 import presign as presign_v4
from .oss_v4 import sign_header as sign_header_v4
from .post_policy import PostForm, PostPolicyRequest, post_form_v1, post_form_v4
from .request import OssEndpoint, OssRequest, PresignedUrl, SignedHeaders
from .rpc import Acs3Request, Acs3Signed, RpcRequest, RpcSigned, sign_acs3, sign_rpc
from .verify import (
    Acs3Auth,
    CredentialLookup,
    OssV1Auth,
    OssV4Auth,
    OssVerified,
    PostVerified,
    RpcAuth,
    StsVerified,
    parse_acs3_authorization,
    parse_oss_authorization,
    parse_oss_query,
    verify_acs3,
    verify_oss,
    verify_post_form,
    verify_rpc,
)

__all__ = [
    "Acs3Auth",
    "Acs3Request",
    "Acs3Signed",
    "CredentialLookup",
    "OssEndpoint",
    "OssRequest",
    "OssV1Auth",
    "OssV4Auth",
    "OssVerified",
    "PostForm",
    "PostPolicyRequest",
    "PostVerified",
    "PresignedUrl",
    "Reason",
    "RpcAuth",
    "RpcRequest",
    "RpcSigned",
    "SignedHeaders",
    "SigningCredentials",
    "SigningError",
    "StsVerified",
    "V4KeyCache",
    "VerificationError",
    "parse_acs3_authorization",
    "parse_oss_authorization",
    "parse_oss_query",
    "post_form_v1",
    "post_form_v4",
    "presign_v1",
    "presign_v4",
    "sign_acs3",
    "sign_header_v1",
    "sign_header_v4",
    "sign_rpc",
    "verify_acs3",
    "verify_oss",
    "verify_post_form",
    "verify_rpc",
]
