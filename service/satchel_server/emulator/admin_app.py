"""The optional admin endpoint: set and clear faults, read counters. Loopback only, off by default.

PUT    /faults/{sts|oss}   JSON body with FaultPlan fields
DELETE /faults[/{service}]
GET    /stats              {"assume_role_calls": n, "assume_role_issued": n}
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json

from aiohttp import web

from satchel_server.emulator.faults import FaultPlan, Service
from satchel_server.emulator.state import EmulatorState

STATE_KEY = web.AppKey("admin_state", EmulatorState)
_FIELDS = {f.name for f in dataclasses.fields(FaultPlan)}
_SERVICES: dict[str, Service] = {"sts": "sts", "oss": "oss"}


def check_loopback(host: str) -> None:
    """Refuse to bind the admin endpoint anywhere but a loopback address."""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise ValueError("the emulator admin endpoint binds to loopback only")


def _service(request: web.Request) -> Service:
    service = _SERVICES.get(request.match_info["service"])
    if service is None:
        raise web.HTTPNotFound(text="unknown service")
    return service


async def put_fault(request: web.Request) -> web.Response:
    service = _service(request)
    try:
        raw = json.loads(await request.read() or b"{}")
        if not isinstance(raw, dict) or not set(raw) <= _FIELDS:
            raise ValueError("unknown fault fields")
        plan = FaultPlan(**raw)
    except (ValueError, TypeError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    request.app[STATE_KEY].faults.set(service, plan)
    return web.json_response(dataclasses.asdict(plan))


async def delete_fault(request: web.Request) -> web.Response:
    faults = request.app[STATE_KEY].faults
    if "service" in request.match_info:
        faults.clear(_service(request))
    else:
        faults.clear()
    return web.Response(status=204)


async def stats(request: web.Request) -> web.Response:
    counters = request.app[STATE_KEY].counters
    return web.json_response(
        {
            "assume_role_calls": counters.assume_role_calls,
            "assume_role_issued": counters.assume_role_issued,
        }
    )


def build_admin_app(state: EmulatorState) -> web.Application:
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_put("/faults/{service}", put_fault)
    app.router.add_delete("/faults/{service}", delete_fault)
    app.router.add_delete("/faults", delete_fault)
    app.router.add_get("/stats", stats)
    return app
