"""Rate limits per caller and per player, on a clock the test moves (no sleeping)."""

from __future__ import annotations

import pytest

from satchel_server.access.ratelimit import RateLimiter
from satchel_server.config import CallerSettings, LimitSettings
from satchel_server.errors import RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **limits: float) -> RateLimiter:
    callers = {
        "eu": CallerSettings(name="eu", keys=(), rate_per_second=1.0, burst=3.0),
        "free": CallerSettings(name="free", keys=(), rate_per_second=0.0),
    }
    settings = LimitSettings(
        **{"player_rate_per_second": 0.0, "player_burst": 1.0, "players_tracked": 100, **limits}
    )
    return RateLimiter(settings, callers, clock)


def test_a_caller_gets_its_burst_then_waits_for_its_rate() -> None:
    clock = Clock()
    limits = limiter(clock)
    for player in ("a", "b", "c"):
        limits.take("eu", "saves", player)
    with pytest.raises(RateLimited, match="this caller") as caught:
        limits.take("eu", "saves", "d")
    assert caught.value.retry_after_seconds == pytest.approx(1.0)
    clock.now += 1.0
    limits.take("eu", "saves", "d")


def test_callers_with_rate_zero_and_anonymous_calls_have_no_caller_limit() -> None:
    limits = limiter(Clock())
    refused: dict[str | None, int] = {"eu": 0, "free": 0, None: 0}
    for index in range(100):
        for caller in refused:
            try:
                limits.take(caller, "saves", f"p{index}")
            except RateLimited:
                refused[caller] += 1
    # "eu" has a burst of 3 and the clock stands still; the others are never limited.
    assert refused == {"eu": 97, "free": 0, None: 0}


def test_a_player_is_limited_across_callers_but_not_across_scopes() -> None:
    clock = Clock()
    limits = limiter(clock, player_rate_per_second=0.5, player_burst=2)
    limits.take("free", "saves", "hot")
    limits.take(None, "saves", "hot")
    with pytest.raises(RateLimited, match="this player") as caught:
        limits.take("free", "saves", "hot")
    assert caught.value.retry_after_seconds == pytest.approx(2.0)
    limits.take("free", "saves", "cold")
    limits.take("free", "replays", "hot")
    clock.now += 2.0
    limits.take("free", "saves", "hot")


def test_player_buckets_are_bounded_least_recently_used_first() -> None:
    limits = limiter(Clock(), player_rate_per_second=0.001, player_burst=1, players_tracked=2)
    limits.take(None, "s", "a")
    limits.take(None, "s", "b")
    with pytest.raises(RateLimited):
        limits.take(None, "s", "a")  # "a" is now the most recently used
    limits.take(None, "s", "c")  # evicts "b", the least recently used
    with pytest.raises(RateLimited):
        limits.take(None, "s", "a")  # still remembered, still empty
    limits.take(None, "s", "b")  # forgotten, so it starts with a full bucket again
