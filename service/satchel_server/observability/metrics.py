"""Prometheus metrics: what operators alert on, with no player id or key as a label.

Hot paths keep plain numbers (RpcStats, BrokerStats, the budget's tokens, signer
expiries); collectors turn them into samples at scrape time, so serving a
request never takes a metrics lock or looks up a labelled child. STS calls,
a hundred times rarer, use prometheus_client's own counter and histogram.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from satchel_server.credentials.broker import CredentialBroker
from satchel_server.credentials.budget import Budget
from satchel_server.credentials.types import Clock, utc_now
from satchel_server.presigning.quota import QuotaStats
from satchel_server.presigning.signing_credentials import ScopeRefresher
from satchel_server.sts.errors import STS_ERROR_TABLE

# Latency buckets from a cache hit (~0.5 ms) to an STS call near its timeout.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# STS outcomes are error codes from a known table; anything else is counted as "other"
# so a misbehaving peer cannot create unbounded label values.
_TRANSPORT_OUTCOMES = ("ok", "timeout", "connection", "tls", "redirect", "malformed")
STS_OUTCOMES = frozenset((*_TRANSPORT_OUTCOMES, *(code for code, _, _ in STS_ERROR_TABLE)))


def sts_outcome_label(outcome: str) -> str:
    for known in STS_OUTCOMES:
        if outcome.startswith(known):
            return known
    return "other"


# The `le` labels prometheus_client gives these bounds (Go's float format: "1.0", "+Inf").
_BUCKET_LABELS = (*(repr(float(bound)) for bound in LATENCY_BUCKETS), "+Inf")


class _Latencies:
    """One method's latency histogram: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0


class RpcStats(Collector):
    """RPCs by method and status code, their latency, and how many are in flight.

    Updated once per call on the event loop, with nothing but integer and float
    arithmetic; read by the scrape thread, which copies before it iterates.
    """

    def __init__(self) -> None:
        self.in_flight = 0
        self._codes: dict[str, dict[str, int]] = {}
        self._latencies: dict[str, _Latencies] = {}

    def finished(self, method: str, code: str, seconds: float) -> None:
        """One call of `method` ended with `code` after `seconds`."""
        codes = self._codes.get(method)
        if codes is None:
            codes = self._codes[method] = {}
            self._latencies[method] = _Latencies()
        codes[code] = codes.get(code, 0) + 1
        latencies = self._latencies[method]
        # bisect_left: a call that took exactly a bound falls in that bound's bucket (le).
        latencies.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        latencies.total += seconds

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "satchel_rpc_requests",
            "RPCs served, by method and gRPC status code.",
            labels=["method", "code"],
        )
        for method, codes in list(self._codes.items()):
            for code, count in list(codes.items()):
                requests.add_metric([method, code], count)
        yield requests
        latency = HistogramMetricFamily(
            "satchel_rpc_latency_seconds", "RPC latency, by method.", labels=["method"]
        )
        for method, latencies in list(self._latencies.items()):
            counts, total = list(latencies.counts), latencies.total
            cumulative, buckets = 0, []
            for label, count in zip(_BUCKET_LABELS, counts, strict=True):
                cumulative += count
                buckets.append((label, cumulative))
            latency.add_metric([method], buckets, sum_value=total)
        yield latency
        yield GaugeMetricFamily("satchel_rpc_in_flight", "RPCs being served.", value=self.in_flight)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    rpc: RpcStats
    sts_calls: Counter
    sts_latency: Histogram

    def observe_sts(self, outcome: str, seconds: float) -> None:
        self.sts_calls.labels(sts_outcome_label(outcome)).inc()
        self.sts_latency.observe(seconds)


def new_metrics() -> Metrics:
    registry = CollectorRegistry()
    rpc = RpcStats()
    registry.register(rpc)
    return Metrics(
        registry=registry,
        rpc=rpc,
        sts_calls=Counter(
            "satchel_sts_calls",
            "AssumeRole attempts, by outcome (ok or the upstream error class).",
            ["outcome"],
            registry=registry,
        ),
        sts_latency=Histogram(
            "satchel_sts_latency_seconds",
            "AssumeRole attempt latency.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
    )


class StateCollector(Collector):
    """Samples read from the broker, the budget and the signers at scrape time."""

    def __init__(
        self,
        broker: CredentialBroker,
        budget: Budget,
        signers: Mapping[str, ScopeRefresher],
        clock: Clock = utc_now,
    ) -> None:
        self._broker = broker
        self._budget = budget
        self._signers = signers
        self._clock = clock

    def collect(self) -> Iterable[Metric]:
        stats = self._broker.stats
        counters: dict[str, tuple[str, Callable[[], int]]] = {
            "satchel_cache_hits": ("Credential cache hits.", lambda: stats.hits),
            "satchel_cache_misses": ("Credential cache misses.", lambda: stats.misses),
            "satchel_cache_coalesced": (
                "Misses that joined an AssumeRole already in flight.",
                lambda: stats.coalesced,
            ),
            "satchel_cache_evictions": (
                "Entries evicted by the LRU bound.",
                lambda: stats.evictions,
            ),
            "satchel_cache_shared_hits": (
                "Misses answered from the fleet's shared cache, without an AssumeRole here.",
                lambda: stats.shared_hits,
            ),
        }
        for name, (documentation, read) in counters.items():
            yield CounterMetricFamily(name, documentation, value=read())
        yield GaugeMetricFamily(
            "satchel_cache_entries", "Credentials held in the cache.", value=len(self._broker)
        )
        shared_up = self._broker.shared_up
        if shared_up is not None:
            yield GaugeMetricFamily(
                "satchel_shared_cache_up",
                "1 while the fleet's shared cache (Redis) answers; 0: local cache and budget.",
                value=1.0 if shared_up else 0.0,
            )
        yield GaugeMetricFamily(
            "satchel_sts_budget_tokens",
            "AssumeRole calls the budget allows right now (negative: calls queued).",
            value=self._budget.available,
        )
        remaining = GaugeMetricFamily(
            "satchel_signer_remaining_seconds",
            "Life left in each scope's presigning credentials (absent: none held).",
            labels=["scope"],
        )
        now = self._clock()
        for name, signer in self._signers.items():
            current = signer.current
            if current is not None and current.expiration is not None:
                remaining.add_metric([name], (current.expiration - now).total_seconds())
        yield remaining


class QuotaCollector(Collector):
    """Folder quotas, per scope: uploads refused, and usage lookups by outcome."""

    def __init__(self, stats: QuotaStats) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        refusals = CounterMetricFamily(
            "satchel_quota_refusals",
            "Uploads refused because the player's folder would pass its quota, by scope.",
            labels=["scope"],
        )
        for scope, count in list(self._stats.refusals.items()):
            refusals.add_metric([scope], count)
        yield refusals
        lookups = CounterMetricFamily(
            "satchel_folder_lookups",
            "Folder usage lookups (ListObjectsV2), by scope and outcome "
            "(ok, failed, rate_limited: refused before any call).",
            labels=["scope", "outcome"],
        )
        for (scope, outcome), count in list(self._stats.lookups.items()):
            lookups.add_metric([scope, outcome], count)
        yield lookups
