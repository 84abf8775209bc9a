"""The soak script works: a few seconds of it, so `make soak` cannot rot unnoticed."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

from support.processes import REPO_ROOT


def test_a_short_soak_passes_with_its_audit_lines_in_a_file(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    soak = ["scripts/soak.py", "--seconds", "4", "--concurrency", "4", "--audit", str(audit)]
    result = subprocess.run(
        [sys.executable, *soak],
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
    # A person reads this: a summary naming the file, and not one audit line.
    audited = re.search(r"^audit: (\d+) lines .* in (\S+)$", result.stdout, re.MULTILINE)
    assert audited, result.stdout
    assert Path(audited.group(2)) == audit
    lines = audit.read_text().splitlines()
    assert len(lines) == int(audited.group(1)) > 0
    assert {json.loads(line)["rpc"] for line in lines} == {"IssueToken", "PresignObject"}
    assert not [line for line in result.stdout.splitlines() if line.startswith("{")]
