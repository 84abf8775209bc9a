"""Where an OSS request points: bucket and key from the Host header and the raw path.

Virtual-hosted style puts the bucket in the host (`bucket.oss-cn-hangzhou.aliyuncs.com`),
path style in the first path segment (`127.0.0.1:port/bucket/key`). The key is decoded from
the raw request target ourselves: a framework's path normalisation could turn `a/../b` into
`b`, and OSS signs and stores the key exactly as sent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Container
from dataclasses import dataclass
from urllib.parse import unquote

from satchel_server.emulator.errors import OssError
from satchel_server.signing.encoding import MAX_KEY_BYTES, decode_query


@dataclass(frozen=True)
class Target:
    bucket: str | None
    key: str | None
    virtual_hosted: bool
    query: tuple[tuple[str, str], ...]

    def param(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.query)


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def bucket_from_host(host: str, known_buckets: Container[str]) -> str | None:
    """The bucket when `host` is virtual-hosted (first label names a configured bucket)."""
    name = _hostname(host).lower()
    if _is_ip(name) or "." not in name:
        return None
    label = name.split(".", 1)[0]
    return label if label in known_buckets else None


def check_key(key: str) -> str:
    size = len(key.encode("utf-8", "surrogatepass"))
    if not 1 <= size <= MAX_KEY_BYTES:
        raise OssError(
            "InvalidObjectName", f"The length of the object name must be 1..{MAX_KEY_BYTES}."
        )
    return key


def parse_target(host: str, raw_path: str, known_buckets: Container[str]) -> Target:
    path, _, raw_query = raw_path.partition("?")
    query = tuple(decode_query(raw_query, plus_is_space=True))
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError as exc:
        raise OssError("InvalidObjectName", "The object name is not valid UTF-8.") from exc
    if not decoded.startswith("/"):
        raise OssError("InvalidArgument", "The request target must be an absolute path.")
    vhost_bucket = bucket_from_host(host, known_buckets)
    if vhost_bucket is not None:
        rest = decoded[1:]
        return Target(vhost_bucket, check_key(rest) if rest else None, True, query)
    rest = decoded[1:]
    if not rest:
        return Target(None, None, False, query)
    bucket, slash, key = rest.partition("/")
    return Target(bucket, check_key(key) if slash and key else None, False, query)
