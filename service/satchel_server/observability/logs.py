"""Structured JSON logs, one object per line, with a redaction pass no line escapes.

Stdlib logging with a JSON formatter rather than structlog: every library
Satchel uses (grpc, aiohttp, asyncio) already logs through stdlib logging, so
one formatter on the root handler covers their lines too, and no dependency
is added.

Redaction is defence in depth: Satchel's own code never passes a secret to a
logger (credentials are repr=False values), but a library's error message
might carry a URL or a header. So the *finished* line, exception text
included, is scrubbed of anything shaped like a secret: presigned query
strings, signature and token parameters, Authorization values, bearer keys,
credential fields in JSON, and long token-like runs.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

REDACTED = "[REDACTED]"

# The request id of the RPC being served, set by the API layer; "-" outside RPCs.
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# Names whose value is a secret (or, with Policy, too bulky to be worth a line).
_HIDDEN_VALUE_NAMES = (
    r"x-oss-signature|x-oss-security-token|x-acs-security-token|x-oss-credential|Signature|"
    r"security-token|SecurityToken|AccessKeySecret|access_key_secret|security_token|OIDCToken"
)
_SENSITIVE_PARAMETERS = _HIDDEN_VALUE_NAMES + r"|Policy|policy"
_SCRUBBERS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A URL's whole query: a presigned URL's query is a bearer credential.
    (re.compile(r"(https?://[^\s\"'?]+)\?[^\s\"']*"), rf"\1?{REDACTED}"),
    # key=value and "key": "value" forms of secret-bearing parameters and fields.
    (re.compile(rf"\b({_SENSITIVE_PARAMETERS})=[^&\s\"']+"), rf"\1={REDACTED}"),
    (
        re.compile(rf"(\\?[\"']?(?:{_SENSITIVE_PARAMETERS})\\?[\"']?\s*[:=]\s*\\?[\"'])[^\"'\\]+"),
        rf"\1{REDACTED}",
    ),
    # A secret's name, a colon and a bare value: headers, YAML, unquoted reprs.
    (re.compile(rf"\b({_HIDDEN_VALUE_NAMES})(\s*:\s*)[^\s\"',;&]+"), rf"\1\2{REDACTED}"),
    # An Authorization header's value, whatever its scheme and shape.
    (
        re.compile(
            r"\b(authorization\\?[\"']?\s*[:=]\s*\\?[\"']?(?:Bearer|Basic)\s+)[^\s\"'\\]+",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
    # Authorization header values: OSS V1, OSS V4, ACS3, bearer keys.
    (
        re.compile(r"\b(OSS4-HMAC-SHA256|ACS3-HMAC-SHA256)\s+[^\s\"']+(\s+[^\s\"']+)*"),
        rf"\1 {REDACTED}",
    ),
    (re.compile(r"\bOSS\s+[A-Za-z0-9.]+:[A-Za-z0-9+/=]+"), f"OSS {REDACTED}"),
    # A bearer credential, by its shape (token68: letters, digits, -._~+/ then '='s):
    # 20 or more such characters, or 8 or more with a digit or one of _+/=. The
    # word after "bearer" in prose ("bearer keys travel in plaintext") is neither.
    (
        re.compile(
            r"\b(Bearer)\s+(?:(?=[\w.~+/-]*[0-9_+/=])[\w.~+/-]{8,}|[\w.~+/-]{20,})=*",
            re.IGNORECASE | re.ASCII,
        ),
        rf"\1 {REDACTED}",
    ),
    # STS security tokens and similar: long runs of base64 text that no id is made of.
    (re.compile(r"[A-Za-z0-9+/_-]{80,}={0,2}"), REDACTED),
)


def scrub(text: str) -> str:
    """`text` with every secret-shaped part replaced by [REDACTED]."""
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": request_id_var.get(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return scrub(json.dumps(entry, ensure_ascii=False))


class ScrubbingTextFormatter(logging.Formatter):
    """Human-readable lines for a terminal (`satchel dev`), scrubbed the same way."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def configure(level: str, *, json_lines: bool, stream: TextIO | None = None) -> None:
    """Route every logger (Satchel's and the libraries') through one scrubbing handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            ScrubbingTextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
        )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
