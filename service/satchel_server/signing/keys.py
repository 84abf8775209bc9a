"""Key material: credentials as a frozen value, and the derived keys signing reuses.

Everything expensive that depends only on the credential is computed once per credential
object (lazily, then memoised on the instance): the percent-encoded security token
(escaping an 800-byte token costs more than the rest of a presign) and the keyed HMAC
states (:class:`Mac`) that are copied per message instead of re-keying. The V4 signing key
depends on the day and region too: :class:`V4KeyCache` holds it.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .encoding import pct
from .errors import SigningError


class Mac:
    """HMAC (RFC 2104) with the padded-key states precomputed once per key.

    ``hmac.HMAC.copy()`` per message is already cheaper than ``hmac.new``; copying the two
    underlying hash states directly skips the Python wrapper as well. The output is
    byte-identical to ``hmac.new(key, msg, algorithm)``; tests check it against the SDKs.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, algorithm: str) -> None:
        template = hashlib.new(algorithm)
        if len(key) > template.block_size:
            key = hashlib.new(algorithm, key).digest()
        key = key.ljust(template.block_size, b"\0")
        self._inner = hashlib.new(algorithm, bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.new(algorithm, bytes(b ^ 0x5C for b in key))

    def __repr__(self) -> str:
        return f"Mac({self._inner.name})"  # never the key or its states

    def _final(self, message: bytes) -> Any:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer

    def digest(self, message: bytes) -> bytes:
        return bytes(self._final(message).digest())

    def hexdigest(self, message: bytes) -> str:
        return str(self._final(message).hexdigest())


@dataclass(frozen=True)
class SigningCredentials:
    """An access key pair, with the STS security token when the pair is temporary.

    Secrets are ``repr=False``; memoised derivatives live in ``__dict__`` (not fields), so
    they appear neither in ``repr`` nor in equality.
    """

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.access_key_id:
            raise SigningError("access_key_id", "must not be empty")
        if not self.access_key_secret:
            raise SigningError("access_key_secret", "must not be empty")
        if self.security_token == "":
            # An empty token would be signed as a flag parameter; say "no token" instead.
            raise SigningError("security_token", "must be None or non-empty")

    def __reduce__(self) -> tuple[type[SigningCredentials], tuple[str, str, str | None]]:
        # Copy/pickle the three fields only: the memoised hash states cannot be copied.
        return (type(self), (self.access_key_id, self.access_key_secret, self.security_token))

    @cached_property
    def encoded_security_token(self) -> str:
        """The token percent-encoded for a query string (once per credential)."""
        return pct(self.security_token) if self.security_token else ""

    @cached_property
    def secret_bytes(self) -> bytes:
        return self.access_key_secret.encode("utf-8")

    @cached_property
    def sha1_mac(self) -> Mac:
        """HMAC-SHA1 keyed with the secret (OSS V1)."""
        return Mac(self.secret_bytes, "sha1")

    @cached_property
    def rpc_mac(self) -> Mac:
        """HMAC-SHA1 keyed with ``secret + "&"`` (RPC 1.0)."""
        return Mac(self.secret_bytes + b"&", "sha1")

    @cached_property
    def sha256_mac(self) -> Mac:
        """HMAC-SHA256 keyed with the raw secret (ACS3)."""
        return Mac(self.secret_bytes, "sha256")


def derive_v4_key(secret: str, day: str, region: str, product: str) -> bytes:
    """The OSS V4 signing key: HMAC chain from ``"aliyun_v4" + secret``."""
    k = hmac.digest(("aliyun_v4" + secret).encode("utf-8"), day.encode(), "sha256")
    k = hmac.digest(k, region.encode("utf-8"), "sha256")
    k = hmac.digest(k, product.encode("utf-8"), "sha256")
    return hmac.digest(k, b"aliyun_v4_request", "sha256")


@dataclass(frozen=True)
class V4Key:
    """One cached V4 derivation: the keyed HMAC, the scope and its query encoding."""

    mac: Mac = field(repr=False)
    scope: str
    credential: str
    encoded_credential: str


class V4KeyCache:
    """V4 signing keys per (access key id, day, region, product).

    Only one day is kept: asking for a new day drops every entry of the old one, so the
    cache never grows past (credentials x regions) and yesterday's keys do not linger.
    The secret is checked on every hit, so a rotated secret under the same id is never
    served a stale key. Thread-safe; lookups take no lock on the hot path.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._day = ""
        self._entries: dict[tuple[str, str, str, str], tuple[str, V4Key]] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, creds: SigningCredentials, day: str, region: str, product: str) -> V4Key:
        # The day is part of the key, so a reader racing a day change never gets a stale key.
        hit = self._entries.get((creds.access_key_id, day, region, product))
        if hit is not None and hit[0] == creds.access_key_secret:
            return hit[1]
        return self._derive(creds, day, region, product)

    def _derive(self, creds: SigningCredentials, day: str, region: str, product: str) -> V4Key:
        raw = derive_v4_key(creds.access_key_secret, day, region, product)
        scope = f"{day}/{region}/{product}/aliyun_v4_request"
        credential = f"{creds.access_key_id}/{scope}"
        key = V4Key(Mac(raw, "sha256"), scope, credential, pct(credential))
        with self._lock:
            if day != self._day:
                if day < self._day:
                    return key  # an old day (e.g. verifying a stale URL): do not evict today
                self._day = day
                self._entries = {}
            if len(self._entries) >= self._max:
                self._entries = {}
            self._entries[(creds.access_key_id, day, region, product)] = (
                creds.access_key_secret,
                key,
            )
        return key

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def day(self) -> str:
        return self._day


DEFAULT_V4_CACHE = V4KeyCache()


def v4_cache(cache: V4KeyCache | None) -> V4KeyCache:
    """The cache to use: the one given (even when still empty) or the process default."""
    return DEFAULT_V4_CACHE if cache is None else cache
