"""The shared cache and the budget a process uses, built from Settings.

Without `[cache] url`: nothing shared and a process-wide bucket (one replica's
behaviour). With it: the Redis SharedCache and the fleet's bucket, each falling
back to local state, and the local bucket sized as the fleet's share of one replica;
and the folder quotas' pending uploads, which refuse uploads while Redis is down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from satchel_server.config import Settings
from satchel_server.credentials.broker import NoSharedCache, SharedCache
from satchel_server.credentials.budget import STS_ACCOUNT_LIMIT_PER_SECOND, Budget, sts_budget
from satchel_server.credentials.types import Clock, utc_now
from satchel_server.fleet.crypto import Keyring
from satchel_server.fleet.link import RedisLink
from satchel_server.fleet.pending_uploads import RedisPendingUploads
from satchel_server.fleet.redis_store import RedisSharedCache
from satchel_server.fleet.shared_budget import FleetBudget
from satchel_server.presigning.quota import PendingUploads


@dataclass(frozen=True)
class Fleet:
    shared: SharedCache
    budget: Budget
    link: RedisLink | None = None
    # The folder quotas' pending uploads (None: each FolderQuotas keeps its own).
    pending_uploads: PendingUploads | None = None

    async def close(self) -> None:
        if self.link is not None:
            await self.link.close()


def open_fleet(settings: Settings, clock: Clock = utc_now) -> Fleet:
    """Build (without connecting: Redis is reached on first use, and may be down then)."""
    rate = settings.sts.budget_per_second
    cache = settings.cache
    if not cache.url:
        return Fleet(NoSharedCache(), sts_budget(rate))
    secrets = settings.cache_secrets
    if secrets is None:  # settings_from_mapping refuses a url without keys
        raise ValueError("a shared cache needs encryption keys")
    options: dict[str, Any] = {
        "socket_timeout": cache.redis_timeout_seconds,
        "socket_connect_timeout": cache.redis_timeout_seconds,
        # No retries inside the client: a command either answers within the
        # timeout or the replica falls back at once.
        "retry": Retry(NoBackoff(), 0),
    }
    if secrets.redis_password:
        options["password"] = secrets.redis_password
    local_rate = rate / cache.expected_replicas
    link = RedisLink(
        Redis.from_url(cache.url, **options),
        cache.redis_timeout_seconds,
        fallback_note=(
            f"the local cache and a local budget of {local_rate:g} AssumeRole/s "
            "(uploads to folder-quota scopes are refused)"
        ),
    )
    keyring = Keyring(secrets.keys)
    shared = RedisSharedCache(
        link,
        keyring,
        key_prefix=cache.key_prefix,
        lock_ttl_seconds=cache.lock_ttl_seconds,
        l1_ttl_seconds=cache.l1_ttl_seconds,
        clock=clock,
    )
    # While Redis is down, each replica keeps to its share of the account's limit.
    local = sts_budget(local_rate, STS_ACCOUNT_LIMIT_PER_SECOND / cache.expected_replicas)
    budget = FleetBudget(link, f"{cache.key_prefix}budget:sts", rate, local)
    pending = RedisPendingUploads(link, keyring, key_prefix=cache.key_prefix)
    return Fleet(shared, budget, link, pending)
