"""`python -m bench --quick`: every measurement runs end to end with tiny counts.

No timing is asserted (the machine is shared); the structure of the results and the counts
that must agree whatever the speed are.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MEASUREMENTS = {"signing", "rpc", "batch", "sts", "memory", "startup", "appserver"}


def _bench(out: Path, *options: str) -> dict[str, Any]:
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out), *options],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    assert (out / "RESULTS.md").read_text().startswith("# Satchel benchmark results")
    document: dict[str, Any] = json.loads((out / "RESULTS.json").read_text())
    return document


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    _bench(out)
    return out


@pytest.fixture(scope="module")
def results(results_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((results_dir / "RESULTS.json").read_text())
    return document


def test_every_measurement_ran_and_has_rows(results: dict[str, Any]) -> None:
    assert results["errors"] == {}
    # At least these; others may be registered beside them.
    assert set(results["results"]) >= MEASUREMENTS
    for row in results["rows"]:
        assert row["met"] in (True, False, None)
        assert row["measurement"]
        assert row["target"]
    assert results["machine"]["cpus_usable"] >= 1


def test_signing_has_every_contender_and_ratio(results: dict[str, Any]) -> None:
    signing = results["results"]["signing"]
    for case in ("v4", "v4_notoken", "v4_escape", "v1", "v1_notoken", "v1_escape"):
        for impl in ("satchel", "oss_v2", "oss2"):
            assert signing["us"][f"{case}_{impl}"] > 0
    assert set(signing["targets_met"]) == set(signing["targets"])


def test_batch_presigning_answers_every_call_and_reports_cost_per_url(
    results: dict[str, Any],
) -> None:
    batch = results["results"]["batch"]
    single, many = batch["contenders"]["single"], batch["contenders"]["batch"]
    for found in (single, many):
        assert found["failed_calls"] == 0
        assert found["sts_calls"] == 0
        assert found["server_cpu_us_per_url"] > 0
    # Per URL: a batch round's CPU per call divided by its items.
    first = many["rounds"][0]
    assert first["server_cpu_us_per_url"] == pytest.approx(
        first["server_cpu_us_per_call"] / batch["items_per_call"]
    )
    assert batch["targets_met"]["batch_cost_share"] == (0 < batch["batch_cost_share"] <= 1 / 8)


def test_rpc_calls_succeed_and_presign_never_calls_sts(results: dict[str, Any]) -> None:
    rpc = results["results"]["rpc"]
    assert set(rpc["contenders"]) == {"echo_issue_token", "issue_token", "echo_presign", "presign"}
    for found in rpc["contenders"].values():
        assert found["failed_calls"] == 0
        for run in found["rounds"]:
            assert run["calls"] > 0
            assert run["statuses"] == {"OK": run["calls"]}
    # The floor is held on the median, over paired rounds, of echo's CPU per call over ours.
    for name in ("issue_token", "presign"):
        ours_and_echo = zip(
            rpc["contenders"][name]["rounds"],
            rpc["contenders"][f"echo_{name}"]["rounds"],
            strict=True,
        )
        shares = [
            echo["server_cpu_us_per_call"] / ours["server_cpu_us_per_call"]
            for ours, echo in ours_and_echo
            if ours["server_cpu_us_per_call"]
        ]
        assert rpc["ratios"][f"{name}_cpu_bound_vs_echo"] == pytest.approx(
            statistics.median(shares)
        )
    # Each server-bound row's verdict is its ratio held to the floor that row states.
    for row in results["rows"]:
        if "server-bound" in row["measurement"]:
            floor = re.search(r">= (\d+)% of echo", row["target"])
            assert floor, row
            name = "issue_token" if row["measurement"].startswith("IssueToken") else "presign"
            share = rpc["ratios"][f"{name}_cpu_bound_vs_echo"]
            assert row["met"] is (share >= int(floor[1]) / 100)
    # The cache was filled first, and presigning signs with scope-level credentials.
    assert rpc["steady_state_sts"]["issue_token"]["sts_calls"] == 0
    assert rpc["steady_state_sts"]["presign"]["sts_calls"] == 0
    assert rpc["targets_met"]["presign_zero_sts"] is True


def test_sts_counts_agree(results: dict[str, Any]) -> None:
    sts = results["results"]["sts"]
    work, storm = sts["workload"], sts["storm"]
    # Far below STS's limit, single-flight gives exactly one AssumeRole per player.
    assert work["sts"]["assume_role_calls"] == work["players"]
    assert work["sts"]["assume_role_issued"] == work["players"]
    assert work["statuses"] == {"OK": work["requests"]}
    assert sum(storm["statuses"].values()) == storm["players"]
    assert storm["sts"]["assume_role_issued"] == storm["statuses"].get("OK", 0)


def test_memory_filled_the_cache(results: dict[str, Any]) -> None:
    memory = results["results"]["memory"]
    assert memory["cached"] == memory["players"] == memory["sts_calls"]
    assert memory["raw_bytes_per_credential"] > memory["token_chars"]


def test_startup_reached_serving(results: dict[str, Any]) -> None:
    startup = results["results"]["startup"]
    assert startup["serving_s"] > 0
    assert startup["import_floor_s"] > 0


def test_appserver_counts_agree_with_the_emulator(results: dict[str, Any]) -> None:
    found = results["results"]["appserver"]
    config = found["config"]
    for workload in ("token", "presign"):
        ours = found["workloads"][f"{workload}_satchel"]
        theirs = found["workloads"][f"{workload}_baseline"]
        for run in (ours, theirs):
            assert run["requests"] == config["requests"]
            assert run["served"] > 0
            assert run["requests"] - run["served"] == sum(run["failures"].values())
        # The baseline calls AssumeRole once per request; each call it served was issued,
        # and each it did not was throttled (the quick run's emulator allows 10/s).
        assert theirs["assume_role_calls"] == config["requests"]
        assert theirs["assume_role_issued"] == theirs["served"]
        assert theirs["failures"]["throttled"] == theirs["requests"] - theirs["served"]
        # Satchel serves everything: its few AssumeRole calls stay under the limit.
        assert ours["served"] == config["requests"]
        assert ours["failures"] == {"throttled": 0, "timed_out": 0, "other": 0}
        assert ours["assume_role_calls"] < theirs["assume_role_calls"]
    # One AssumeRole per player for tokens (single-flight, cached); none for presigning.
    assert found["workloads"]["token_satchel"]["assume_role_calls"] == config["players"]
    assert found["workloads"]["presign_satchel"]["assume_role_calls"] == 0
    for probe in found["cold_probe"].values():
        assert probe["assume_role_issued"] == probe["served"] == config["cold_probe_players"]
    verdicts = [row for row in results["rows"] if row["issue"] == "#23"]
    assert [row["met"] for row in verdicts[:2]] == [
        all(found["targets_met"][workload].values()) for workload in ("token", "presign")
    ]


def test_only_keeps_the_other_measurements_results(results_dir: Path, tmp_path: Path) -> None:
    shutil.copy(results_dir / "RESULTS.json", tmp_path / "RESULTS.json")
    earlier: dict[str, Any] = json.loads((results_dir / "RESULTS.json").read_text())
    merged = _bench(tmp_path, "--only", "startup")
    assert list(merged["results"]) == list(earlier["results"])
    for name, result in earlier["results"].items():
        if name != "startup":
            assert merged["results"][name] == result
            assert merged["measured"][name] == earlier["measured"][name]
    assert merged["measured"]["startup"]["date_utc"] == merged["machine"]["date_utc"]
    assert len(merged["rows"]) == len(earlier["rows"])
    assert "Kept from earlier runs" in (tmp_path / "RESULTS.md").read_text()
