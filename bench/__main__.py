"""`make bench` / `python -m bench`: every benchmark, each against its baseline in one run.

python -m bench                  every measurement; writes bench/RESULTS.md and RESULTS.json
python -m bench --quick          tiny counts, a smoke run; writes nothing unless --out is given
python -m bench --only rpc,sts   a subset (names: signing, rpc, batch, sts, memory, startup,
                                 fleet, appserver); the other measurements' results already in the
                                 output directory are kept, so the files stay whole

Every loop is bounded in calls and in time; the full run takes a few minutes on 2 cores.
Exits 0 when every measurement ran (a missed target is reported, not an error), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import appserver, batch, fleet, memory, report, rpc, signing, startup, sts
from bench.common import Row, load_average, machine_facts

BENCH_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class Measurement:
    title: str
    full: Callable[[], dict[str, Any]]
    quick: Callable[[], dict[str, Any]]
    rows: Callable[[dict[str, Any]], list[Row]]
    describe: Callable[[dict[str, Any]], list[str]]


MEASUREMENTS: dict[str, Measurement] = {
    "signing": Measurement(
        "1. Signing core vs the official SDKs",
        signing.run,
        lambda: signing.run(repeats=1, ours=200, theirs=10),
        signing.rows,
        signing.describe,
    ),
    "rpc": Measurement(
        "2. RPC throughput and latency vs a bare grpc.aio echo",
        rpc.run,
        lambda: rpc.run(rpc.QUICK),
        rpc.rows,
        rpc.describe,
    ),
    "batch": Measurement(
        "2b. Batch presigning: server CPU per URL, PresignObjects vs PresignObject",
        batch.run,
        lambda: batch.run(batch.QUICK),
        batch.rows,
        batch.describe,
    ),
    "sts": Measurement(
        "3. STS efficiency and behaviour at the 100 calls/s limit",
        sts.run,
        lambda: sts.run(sts.QUICK),
        sts.rows,
        sts.describe,
    ),
    "memory": Measurement(
        "4. Memory per cached credential",
        memory.run,
        lambda: memory.run(2_000),
        memory.rows,
        memory.describe,
    ),
    "startup": Measurement(
        "5. Start-up to health SERVING",
        startup.run,
        lambda: startup.run(1),
        startup.rows,
        startup.describe,
    ),
    "fleet": Measurement(
        "6. Fleet: AssumeRole calls across replicas, with and without the shared cache",
        lambda: fleet.run(False),
        lambda: fleet.run(True),
        fleet.rows,
        fleet.describe,
    ),
    "appserver": Measurement(
        "7. Satchel vs the per-request STS app server studios run today",
        appserver.run,
        lambda: appserver.run(appserver.QUICK),
        appserver.rows,
        appserver.describe,
    ),
}


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts: a smoke run")
    parser.add_argument("--out", type=Path, help="where RESULTS.md/.json go (default: bench/)")
    parser.add_argument("--only", help="comma-separated subset of " + ", ".join(MEASUREMENTS))
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(MEASUREMENTS)
    if unknown := [name for name in chosen if name not in MEASUREMENTS]:
        parser.error(f"unknown measurement {unknown[0]!r}")
    args.chosen = chosen
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    facts = machine_facts()
    facts["mode"] = "quick (smoke run, tiny counts)" if args.quick else "full"
    started = time.perf_counter()
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in args.chosen:
        measurement = MEASUREMENTS[name]
        began = time.perf_counter()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        try:
            results[name] = (measurement.quick if args.quick else measurement.full)()
        except Exception as error:  # one broken bench must not hide the others' results
            traceback.print_exc()
            errors[name] = f"{type(error).__name__}: {error}"
            continue
        print(f"bench: {name} done in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    facts["wall_s"] = time.perf_counter() - started
    facts["load_average_at_end"] = load_average()
    out = args.out or (None if args.quick else BENCH_DIR)
    measured = {name: _when(facts) for name in [*results, *errors]}
    if args.only and out is not None:
        _keep_earlier(report.read(out), results, errors, measured)
    rows, details = _render(results, errors)
    results = {name: results[name] for name in MEASUREMENTS if name in results}
    print("\n".join(report.table(rows)))
    if out is not None:
        for path in report.write(out, facts, rows, details, results, errors, measured):
            print(f"bench: wrote {path}", file=sys.stderr)
    return 1 if any(name in errors for name in args.chosen) else 0


def _when(facts: dict[str, Any]) -> dict[str, Any]:
    return {"date_utc": facts["date_utc"], "mode": facts["mode"]}


def _keep_earlier(
    earlier: dict[str, Any] | None,
    results: dict[str, Any],
    errors: dict[str, str],
    measured: dict[str, dict[str, Any]],
) -> None:
    """Add what an earlier run wrote for the measurements this run did not repeat."""
    if earlier is None:
        return
    for kept, source in ((results, earlier["results"]), (errors, earlier.get("errors", {}))):
        for name, value in source.items():
            if name in MEASUREMENTS and name not in measured:
                kept[name] = value
                measured[name] = earlier.get("measured", {}).get(name) or _when(earlier["machine"])


def _render(
    results: dict[str, Any], errors: dict[str, str]
) -> tuple[list[Row], dict[str, list[str]]]:
    """Rows and details in the registry's order, whichever run measured them."""
    rows: list[Row] = []
    details: dict[str, list[str]] = {}
    for name, measurement in MEASUREMENTS.items():
        if name in results:
            try:
                rows.extend(measurement.rows(results[name]))
                details[measurement.title] = measurement.describe(results[name])
                continue
            except (KeyError, TypeError, ValueError) as error:  # a kept result, older layout
                del results[name]
                errors[name] = f"kept result no longer readable ({error!r}): run it again"
        if name in errors:
            rows.append(Row(measurement.title, "failed to run", "-", "-", "-", False))
    return rows, details


# Guarded: client and server processes are spawned, and spawn re-imports this module.
if __name__ == "__main__":
    raise SystemExit(main())
