"""Fault injection, separately for STS and OSS, applied by one aiohttp middleware.

A `FaultPlan` says what goes wrong (latency, a 5xx, throttling, a malformed or HTML body, a
dropped connection, a clock offset), for how many requests (`count`, None = until cleared) and
how often (`rate`, a share of requests, drawn from a seeded RNG so runs are reproducible).
Nothing is injected unless a test or the loopback-only admin endpoint asks for it.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Middleware

Service = Literal["sts", "oss"]
Malformed = Literal["json", "html", "empty", "xml"]

_MALFORMED_BODIES: dict[str, tuple[bytes, str]] = {
    "json": (b'{"RequestId": "x", "Credentials": {', "application/json"),
    "xml": (b"<?xml version='1.0'?><Error><Code>", "application/xml"),
    "html": (
        b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>",
        "text/html",
    ),
    "empty": (b"", "application/json"),
}


@dataclass(frozen=True)
class FaultPlan:
    latency_s: float = 0.0
    status: int | None = None  # answer this status (e.g. 500, 503) with a service error body
    throttle: bool = False
    malformed: Malformed | None = None
    drop: bool = False
    clock_offset_s: float = 0.0
    count: int | None = None
    rate: float = 1.0

    def disruptive(self) -> bool:
        return bool(self.status or self.throttle or self.malformed or self.drop)


NO_FAULT = FaultPlan()

# What the middleware calls to render a 5xx or throttling answer in the service's own format.
ErrorRenderer = Callable[[web.Request, int, bool], web.StreamResponse]


class Faults:
    """The in-process API: `set`, `clear`, `plan`. Thread-safe (the admin app shares it)."""

    def __init__(self, seed: int = 0) -> None:
        self._plans: dict[str, FaultPlan] = {}
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # noqa: S311 (fault sampling, not crypto)

    def set(self, service: Service, plan: FaultPlan) -> None:
        with self._lock:
            self._plans[service] = plan

    def clear(self, service: Service | None = None) -> None:
        with self._lock:
            if service is None:
                self._plans.clear()
            else:
                self._plans.pop(service, None)

    def plan(self, service: Service) -> FaultPlan:
        with self._lock:
            return self._plans.get(service, NO_FAULT)

    def clock_offset(self, service: Service) -> float:
        return self.plan(service).clock_offset_s

    def take(self, service: Service) -> FaultPlan:
        """The plan for this request (consuming one of `count`), or NO_FAULT."""
        with self._lock:
            plan = self._plans.get(service)
            if plan is None or (plan.latency_s == 0 and not plan.disruptive()):
                return NO_FAULT
            if plan.rate < 1.0 and self._random.random() >= plan.rate:
                return NO_FAULT
            if plan.count is not None:
                remaining = plan.count - 1
                if remaining <= 0:
                    # Keep the clock offset (not a per-request fault) once the count is spent.
                    self._plans[service] = FaultPlan(clock_offset_s=plan.clock_offset_s)
                else:
                    self._plans[service] = replace(plan, count=remaining)
            return plan


def fault_middleware(faults: Faults, service: Service, render_error: ErrorRenderer) -> Middleware:
    @web.middleware
    async def middleware(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        plan = faults.take(service)
        if plan.latency_s > 0:
            await asyncio.sleep(plan.latency_s)
        if plan.drop:
            # Abort (RST, no response at all); the response returned below is never written.
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        if plan.malformed is not None:
            body, content_type = _MALFORMED_BODIES[plan.malformed]
            status = plan.status or (502 if plan.malformed == "html" else 200)
            return web.Response(status=status, body=body, content_type=content_type)
        if plan.throttle or plan.status:
            return render_error(request, plan.status or 0, plan.throttle)
        return await handler(request)

    return middleware
