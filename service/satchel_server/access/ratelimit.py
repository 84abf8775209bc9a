"""Request rate limits: one token bucket per caller, and one per (scope, player).

Per caller, so that one compromised game server cannot spend the account's STS
budget; per player, so that one hot player cannot either. Limits refuse at once
(RESOURCE_EXHAUSTED with the wait as a retry hint) rather than queueing.

Player buckets live in a bounded LRU: memory stays flat however many players
there are. A forgotten player starts again with a full bucket, which is no
worse than its burst; the caller's own bucket still bounds the total.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from satchel_server.config import CallerSettings, LimitSettings
from satchel_server.credentials.budget import TokenBucket
from satchel_server.errors import RateLimited


class RateLimiter:
    def __init__(
        self,
        limits: LimitSettings,
        callers: Mapping[str, CallerSettings],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._callers = {
            caller.name: TokenBucket(caller.rate_per_second, caller.burst, clock)
            for caller in callers.values()
            if caller.rate_per_second > 0
        }
        self._players: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()

    def take(self, caller: str | None, scope: str, player_id: str) -> None:
        """Spend one request for the caller, then for the player; RateLimited if either is out."""
        if caller is not None and (bucket := self._callers.get(caller)) is not None:
            self._spend(bucket, "caller")
        if self._limits.player_rate_per_second > 0:
            self._spend(self._player_bucket((scope, player_id)), "player")

    def _player_bucket(self, key: tuple[str, str]) -> TokenBucket:
        bucket = self._players.get(key)
        if bucket is not None:
            self._players.move_to_end(key)
            return bucket
        bucket = TokenBucket(
            self._limits.player_rate_per_second, self._limits.player_burst, self._clock
        )
        self._players[key] = bucket
        if len(self._players) > self._limits.players_tracked:
            self._players.popitem(last=False)
        return bucket

    @staticmethod
    def _spend(bucket: TokenBucket, subject: str) -> None:
        wait = bucket.try_take()
        if wait > 0:
            raise RateLimited(subject, retry_after_seconds=wait)
