"""The soak script works: a few seconds of it, so `make soak` cannot rot unnoticed."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

from support.processes import REPO_ROOT


def test_a_short_soak_passes() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/soak.py", "--seconds", "4", "--concurrency", "4"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "soak: passed" in result.stdout
    assert "PROBLEM" not in result.stdout
    summary = re.search(r"^soak \d+ s, (\d+) RPCs: (\{.*\})$", result.stdout, re.MULTILINE)
    assert summary, result.stdout
    total, statuses = int(summary[1]), ast.literal_eval(summary[2])
    assert sum(statuses.values()) == total
    # Under injected STS faults a call is served or told to retry; never anything else.
    assert set(statuses) <= {"OK", "UNAVAILABLE", "DEADLINE_EXCEEDED"}
    assert statuses["OK"] > 0
