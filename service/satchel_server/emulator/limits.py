"""STS's guards with memory: the per-account call rate and the signature-nonce window.

Both take the time as an argument (the app passes its injected clock), so tests drive them
without sleeping.
"""

from __future__ import annotations

import threading
from collections import deque


class RateLimiter:
    """At most `limit` calls per `window_s` per key (a sliding window, as a quota would be)."""

    def __init__(self, limit: int, window_s: float = 1.0) -> None:
        self._limit = limit
        self._window = window_s
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float) -> bool:
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now - self._window:
                calls.popleft()
            if len(calls) >= self._limit:
                return False
            calls.append(now)
            return True


class NonceCache:
    """Remembers (access key, nonce) for `ttl_s`; a second use inside it is a replay."""

    def __init__(self, ttl_s: float = 900.0, max_entries: int = 1_000_000) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._seen: dict[tuple[str, str], float] = {}
        self._order: deque[tuple[float, tuple[str, str]]] = deque()
        self._lock = threading.Lock()

    def first_use(self, access_key_id: str, nonce: str, now: float) -> bool:
        """Record the nonce; False if it was already used inside the window."""
        entry = (access_key_id, nonce)
        with self._lock:
            while self._order and (
                self._order[0][0] <= now - self._ttl or len(self._order) > self._max
            ):
                _, old = self._order.popleft()
                self._seen.pop(old, None)
            if entry in self._seen:
                return False
            self._seen[entry] = now
            self._order.append((now, entry))
            return True
