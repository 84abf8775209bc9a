"""Every error the emulator can answer, in two tables (OSS, STS), rendered in one place.

Codes, statuses and messages follow Alibaba's error references: OSS answers XML
`<Error><Code/><Message/><RequestId/><HostId/>…</Error>`; STS (an RPC/POP API) answers JSON or
XML with `RequestId, HostId, Code, Message`. Throttling is an HTTP 400 on STS, as on the real
service. Nothing secret is ever put in an error: the one echoed value that looks sensitive,
SignatureDoesNotMatch's StringToSign, is what OSS itself returns and holds no key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class ErrorSpec:
    status: int
    message: str


OSS_ERRORS: Mapping[str, ErrorSpec] = {
    "AccessDenied": ErrorSpec(403, "You have no right to access this object."),
    "SignatureDoesNotMatch": ErrorSpec(
        403,
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    ),
    "InvalidAccessKeyId": ErrorSpec(
        403, "The OSS Access Key Id you provided does not exist in our records."
    ),
    "SecurityTokenExpired": ErrorSpec(403, "The security token you provided has expired."),
    "InvalidSecurityToken": ErrorSpec(403, "The security token you provided is invalid."),
    "RequestTimeTooSkewed": ErrorSpec(
        403, "The difference between the request time and the current time is too large."
    ),
    "NoSuchKey": ErrorSpec(404, "The specified key does not exist."),
    "NoSuchBucket": ErrorSpec(404, "The specified bucket does not exist."),
    "NoSuchCORSConfiguration": ErrorSpec(404, "The CORS Configuration does not exist."),
    "NoSuchUpload": ErrorSpec(
        404,
        "The specified upload does not exist. The upload ID may be invalid, or the upload "
        "may have been aborted or completed.",
    ),
    "InvalidObjectName": ErrorSpec(400, "The specified object name is invalid."),
    "InvalidBucketName": ErrorSpec(400, "The specified bucket is not valid."),
    "EntityTooLarge": ErrorSpec(400, "Your proposed upload exceeds the maximum allowed size."),
    "EntityTooSmall": ErrorSpec(
        400, "Your proposed upload is smaller than the minimum allowed size."
    ),
    "FileAlreadyExists": ErrorSpec(409, "The object you specified already exists."),
    "InvalidArgument": ErrorSpec(400, "An argument you provided is invalid."),
    "InvalidPolicyDocument": ErrorSpec(400, "Invalid Policy."),
    "InvalidTag": ErrorSpec(400, "The tag provided was not a valid tag."),
    "NotSymlink": ErrorSpec(400, "The specified object is not a symlink."),
    "OperationNotSupported": ErrorSpec(400, "The operation is not supported for this resource."),
    "MalformedXML": ErrorSpec(
        400,
        "The XML you provided was not well-formed or did not validate against our "
        "published schema.",
    ),
    "MalformedPOSTRequest": ErrorSpec(
        400, "The body of your POST request is not well-formed multipart/form-data."
    ),
    "InvalidDigest": ErrorSpec(400, "The Content-MD5 you specified is not valid."),
    "BadDigest": ErrorSpec(400, "The Content-MD5 you specified did not match what we received."),
    "InvalidPart": ErrorSpec(
        400,
        "One or more of the specified parts could not be found or the specified entity tag "
        "might not have matched the part's entity tag.",
    ),
    "InvalidPartOrder": ErrorSpec(
        400, "The list of parts was not in ascending order. Parts must be ordered by part number."
    ),
    "InvalidRange": ErrorSpec(416, "The requested range is not satisfiable."),
    "MissingContentLength": ErrorSpec(411, "You must provide the Content-Length HTTP header."),
    "MethodNotAllowed": ErrorSpec(
        405, "The specified method is not allowed against this resource."
    ),
    "NotImplemented": ErrorSpec(
        501, "A header you provided implies functionality that is not implemented."
    ),
    "InternalError": ErrorSpec(500, "We encountered an internal error. Please try again."),
    "ServiceUnavailable": ErrorSpec(503, "Please reduce your request rate."),
}


STS_ERRORS: Mapping[str, ErrorSpec] = {
    "Throttling.User": ErrorSpec(400, "Request was denied due to user flow control."),
    "InvalidParameter.PolicyGrammar": ErrorSpec(
        400, "The parameter Policy has not passed grammar check."
    ),
    "InvalidParameter.PolicySize": ErrorSpec(
        400, "The size of Policy must be smaller than the limit."
    ),
    "InvalidParameter.RoleSessionName": ErrorSpec(
        400, "The parameter RoleSessionName is wrongly formed."
    ),
    "InvalidParameter.DurationSeconds": ErrorSpec(
        400, "The Min/Max value of DurationSeconds is 15min/the MaxSessionDuration of the role."
    ),
    "InvalidParameter.RoleArn": ErrorSpec(400, "The parameter RoleArn is wrongly formed."),
    "InvalidParameter.ExternalId": ErrorSpec(400, "The parameter ExternalId is wrongly formed."),
    "MissingRoleArn": ErrorSpec(400, "RoleArn is mandatory for this action."),
    "MissingRoleSessionName": ErrorSpec(400, "RoleSessionName is mandatory for this action."),
    "MissingParameter": ErrorSpec(
        400, "The input parameter that is mandatory for processing this request is not supplied."
    ),
    "NoPermission": ErrorSpec(
        403, "You are not authorized to do this action. You should be authorized by RAM."
    ),
    "EntityNotExist.Role": ErrorSpec(404, "The specified Role not exists."),
    "SignatureDoesNotMatch": ErrorSpec(
        400, "Specified signature is not matched with our calculation."
    ),
    "IncompleteSignature": ErrorSpec(
        400, "The request signature does not conform to Aliyun standards."
    ),
    "InvalidTimeStamp.Expired": ErrorSpec(400, "Specified time stamp or date value is expired."),
    "InvalidTimeStamp.Format": ErrorSpec(
        400, "Specified time stamp or date value is not well formatted."
    ),
    "SignatureNonceUsed": ErrorSpec(400, "Specified signature nonce was used already."),
    "InvalidAccessKeyId.NotFound": ErrorSpec(404, "Specified access key is not found."),
    "MissingSecurityToken": ErrorSpec(400, "SecurityToken is mandatory for this action."),
    "InvalidSecurityToken.Expired": ErrorSpec(400, "Specified SecurityToken is expired."),
    "AuthenticationFail.NoPermission": ErrorSpec(401, "There is no permission"),
    "AuthenticationFail.OIDCToken.Invalid": ErrorSpec(401, "The OIDC token is invalid."),
    "AuthenticationFail.OIDCToken.InvalidSignature": ErrorSpec(
        401, "OIDC token validate failed: invalid signature."
    ),
    "AuthenticationFail.OIDCToken.Expired": ErrorSpec(401, "This JsonWebToken is expired."),
    "AuthenticationFail.OIDCToken.IssuerNotMatch": ErrorSpec(401, "Invalid issuer."),
    "AuthenticationFail.OIDCToken.AudienceNotMatch": ErrorSpec(401, "Invalid audience."),
    "InvalidAction.NotFound": ErrorSpec(
        404, "Specified api is not found, please check your url and method."
    ),
    "InvalidVersion": ErrorSpec(400, "Specified parameter Version is not valid."),
    "InternalError": ErrorSpec(500, "The request processing has failed due to some unknown error."),
    "ServiceUnavailable": ErrorSpec(
        503, "The request has failed due to a temporary failure of the server."
    ),
}


_NO_SPEC = ErrorSpec(500, "")


@dataclass
class _EmulatorError(Exception):
    """Raise with a code from the table; `message` overrides the table's text."""

    code: str
    message: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    # Set when the code comes from elsewhere (the signing core's verification table).
    status: int | None = None

    def _spec(self, table: Mapping[str, ErrorSpec]) -> ErrorSpec:
        if self.status is not None:
            return ErrorSpec(self.status, self.message or table.get(self.code, _NO_SPEC).message)
        return table[self.code]

    def __str__(self) -> str:
        return f"{self.code}: {self.message or ''}"


class OssError(_EmulatorError):
    """An OSS error response; `extra` becomes additional XML elements (e.g. StringToSign)."""

    def spec(self) -> ErrorSpec:
        return self._spec(OSS_ERRORS)


class StsError(_EmulatorError):
    """An STS error response."""

    def spec(self) -> ErrorSpec:
        return self._spec(STS_ERRORS)


@dataclass(frozen=True)
class Rendered:
    status: int
    body: bytes
    content_type: str


def _xml_elements(fields: Mapping[str, str]) -> str:
    return "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields.items())


def render_oss_error(error: OssError, request_id: str, host_id: str) -> Rendered:
    spec = error.spec()
    fields = {
        "Code": error.code,
        "Message": error.message or spec.message,
        "RequestId": request_id,
        "HostId": host_id,
        **error.extra,
    }
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{_xml_elements(fields)}</Error>\n'
    return Rendered(spec.status, body.encode(), "application/xml")


def render_sts_error(error: StsError, request_id: str, host_id: str, fmt: str) -> Rendered:
    spec = error.spec()
    fields = {
        "RequestId": request_id,
        "HostId": host_id,
        "Code": error.code,
        "Message": error.message or spec.message,
    }
    if fmt.upper() == "XML":
        body = f'<?xml version="1.0" encoding="UTF-8"?><Error>{_xml_elements(fields)}</Error>'
        return Rendered(spec.status, body.encode(), "text/xml;charset=utf-8")
    return Rendered(spec.status, json.dumps(fields).encode(), "application/json;charset=utf-8")
