"""Retries in the manner of the AWS SDKs' standard mode.

At most `max_attempts` tries with full-jitter exponential backoff, and a retry
quota shared by every call: each retry spends from it and each success pays a
little back. While STS is down the quota empties and calls fail after their
first attempt instead of multiplying the load; successes refill it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

BACKOFF_BASE_SECONDS = 0.1
BACKOFF_CAP_SECONDS = 2.0
QUOTA_CAPACITY = 500
RETRY_COST = 5
TIMEOUT_RETRY_COST = 10
SUCCESS_REFUND = 1


def full_jitter_backoff(attempt: int, rng: random.Random) -> float:
    """Sleep before retry number `attempt` (1-based): uniform in [0, min(cap, base * 2^n))."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
    return rng.uniform(0, ceiling)


@dataclass(slots=True)
class RetryQuota:
    available: int = QUOTA_CAPACITY
    capacity: int = QUOTA_CAPACITY

    def try_spend(self, timeout: bool) -> bool:
        cost = TIMEOUT_RETRY_COST if timeout else RETRY_COST
        if self.available < cost:
            return False
        self.available -= cost
        return True

    def refund(self) -> None:
        self.available = min(self.capacity, self.available + SUCCESS_REFUND)
