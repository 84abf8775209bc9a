"""`satchel doctor`: load the configuration, run every check, print one line each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path

from satchel_server.config import Settings, load_settings
from satchel_server.credentials.types import Clock, utc_now
from satchel_server.doctor.checks import run_checks
from satchel_server.doctor.report import CheckResult, Outcome, failed, passed
from satchel_server.errors import ConfigError

EXIT_OK = 0
EXIT_FAILED = 1


def _load(path: Path | None, environ: Mapping[str, str]) -> Settings | CheckResult:
    try:
        settings = load_settings(path, environ)
    except ConfigError as exc:
        fix = (
            "give --config (or $SATCHEL_CONFIG) a readable TOML file"
            if exc.key == "--config"
            else f"correct {exc.key} (satchel.example.toml documents every key)"
        )
        return failed("config", str(exc), fix)
    if not settings.scopes:
        return failed(
            "config",
            f"{settings.source} has no [scopes.NAME] table",
            "add a scope: the bucket, region, role and endpoint players use",
        )
    return settings


async def check(
    path: Path | None,
    environ: Mapping[str, str],
    *,
    clock: Clock = utc_now,
    emit: Callable[[CheckResult], None],
) -> list[CheckResult]:
    """Run every check, emitting each result as it comes; returns them all."""
    loaded = _load(path, environ)
    if isinstance(loaded, CheckResult):
        emit(loaded)
        return [loaded]
    results = [passed("config", f"{loaded.source}: {len(loaded.scopes)} scope(s)")]
    emit(results[0])
    async for result in run_checks(loaded, clock):
        emit(result)
        results.append(result)
    return results


def main(path: Path | None, environ: Mapping[str, str]) -> int:
    results = asyncio.run(check(path, environ, emit=lambda r: print(r.line(), flush=True)))
    failures = sum(result.outcome is Outcome.FAIL for result in results)
    print(f"{failures} check(s) failed" if failures else "all checks passed")
    return EXIT_FAILED if failures else EXIT_OK
