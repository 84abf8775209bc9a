"""The shared cache: Redis answers, and SATCHEL_CACHE_KEYS opens what the fleet sealed."""

from __future__ import annotations

import contextlib
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

from satchel_server.config import CACHE_KEYS_ENV, REDIS_PASSWORD_ENV, Settings
from satchel_server.doctor.report import CheckResult, failed, passed
from satchel_server.fleet.crypto import Keyring

NAME = "shared cache (Redis)"
TIMEOUT_SECONDS = 3.0
PROBE_TTL_MS = 60_000


async def check_shared_cache(settings: Settings) -> CheckResult:
    secrets = settings.cache_secrets
    if secrets is None:  # settings refuse a url without keys; kept for the type checker
        return failed(NAME, f"{CACHE_KEYS_ENV} is not set", f"set {CACHE_KEYS_ENV}")
    keyring = Keyring(secrets.keys)
    client = Redis.from_url(
        settings.cache.url,
        password=secrets.redis_password or None,
        socket_timeout=TIMEOUT_SECONDS,
        socket_connect_timeout=TIMEOUT_SECONDS,
    )
    prefix = f"{settings.cache.key_prefix}entry:"
    try:
        await client.ping()
        found = [key async for key in client.scan_iter(match=prefix + "*", count=100)]
        if found:
            entry = found[0]
            blob = await client.get(entry)
            name = entry.decode().removeprefix(prefix)
            if isinstance(blob, bytes) and keyring.open(name, blob) is None:
                key_id = blob[2 : 2 + blob[1]].decode(errors="replace") if len(blob) > 2 else ""
                return failed(
                    NAME,
                    f"an entry sealed with key id {key_id!r} does not open with {CACHE_KEYS_ENV}",
                    f"give every replica the same {CACHE_KEYS_ENV} (during a rotation, "
                    "each replica holds both keys)",
                )
            return passed(NAME, "answers; a fleet entry opens with the configured keys")
        # No entry yet: a sealed probe must come back and open.
        name = keyring.name(["satchel-doctor", uuid.uuid4().hex])
        await client.set(prefix + name, keyring.seal(name, b"probe"), px=PROBE_TTL_MS)
        blob = await client.get(prefix + name)
        await client.delete(prefix + name)
        if not isinstance(blob, bytes) or keyring.open(name, blob) != b"probe":
            return failed(NAME, "a sealed probe entry did not come back", "check Redis")
        return passed(NAME, "answers; a sealed probe entry round-trips")
    except RedisError as exc:
        return failed(
            NAME,
            f"{type(exc).__name__}",
            f"check [cache] url, {REDIS_PASSWORD_ENV} and the network path to Redis",
        )
    finally:
        with contextlib.suppress(RedisError):
            await client.aclose()
