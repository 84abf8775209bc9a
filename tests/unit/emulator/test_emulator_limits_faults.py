"""The STS rate limiter and nonce window, and the fault plans' bookkeeping."""

from __future__ import annotations

import pytest

from satchel_server.emulator.admin_app import check_loopback
from satchel_server.emulator.faults import NO_FAULT, FaultPlan, Faults
from satchel_server.emulator.limits import NonceCache, RateLimiter


def test_rate_limiter_sliding_window() -> None:
    limiter = RateLimiter(3, window_s=1.0)
    assert all(limiter.allow("acct", 10.0) for _ in range(3))
    assert not limiter.allow("acct", 10.5)
    assert limiter.allow("other", 10.5)  # per key
    assert limiter.allow("acct", 11.0)  # the first call left the window


def test_nonce_window() -> None:
    cache = NonceCache(ttl_s=900)
    assert cache.first_use("ak", "n1", 0.0)
    assert not cache.first_use("ak", "n1", 899.0)
    assert cache.first_use("ak2", "n1", 899.0)
    assert cache.first_use("ak", "n1", 900.0)  # expired from the window


def test_nonce_cache_is_bounded() -> None:
    cache = NonceCache(ttl_s=900, max_entries=2)
    for i in range(10):
        assert cache.first_use("ak", str(i), 0.0)
    assert len(cache._seen) <= 3


def test_fault_count_and_clear() -> None:
    faults = Faults()
    assert faults.take("sts") is NO_FAULT
    faults.set("sts", FaultPlan(status=503, count=2, clock_offset_s=5))
    assert faults.take("sts").status == 503
    assert faults.take("oss") is NO_FAULT  # separate per service
    assert faults.take("sts").status == 503
    assert faults.take("sts") is NO_FAULT
    assert faults.clock_offset("sts") == 5  # the offset outlives the counted faults
    faults.clear()
    assert faults.clock_offset("sts") == 0


def test_fault_rate_is_seeded() -> None:
    def run() -> list[bool]:
        faults = Faults(seed=7)
        faults.set("oss", FaultPlan(status=500, rate=0.3))
        return [faults.take("oss").status == 500 for _ in range(200)]

    first = run()
    assert first == run()
    assert 20 < sum(first) < 100


def test_offset_only_plan_is_no_request_fault() -> None:
    faults = Faults()
    faults.set("oss", FaultPlan(clock_offset_s=60))
    assert faults.take("oss") is NO_FAULT
    assert faults.clock_offset("oss") == 60


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.1.2.3"])
def test_admin_loopback_ok(host: str) -> None:
    check_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "::"])
def test_admin_refuses_other_hosts(host: str) -> None:
    with pytest.raises(ValueError):
        check_loopback(host)
