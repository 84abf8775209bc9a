"""protos/ as a product: `buf lint` (STANDARD) is clean and `buf breaking` holds the line.

`buf breaking` compares protos/ with protos/baseline.binpb, the API clients in the field were
built against (`make proto-baseline` moves it, deliberately). The mutation tests prove the
check bites: a copy of protos/ with one incompatible edit fails it, an added field passes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.node import buf
from support.processes import REPO_ROOT

PROTOS = REPO_ROOT / "protos"
BASELINE = PROTOS / "baseline.binpb"
PROTO = Path("satchel/v1/token_service.proto")
SOURCE = (PROTOS / PROTO).read_text()


def test_buf_lint_is_clean_under_standard() -> None:
    assert "STANDARD" in (PROTOS / "buf.yaml").read_text()
    done = buf("lint", PROTOS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_buf_lint_reports_a_rule_broken(tmp_path: Path) -> None:
    # STANDARD wants enum values prefixed with the enum's name.
    changed = _edited_copy(tmp_path, "PERMISSION_DELETE = 4;", "DELETE = 4;")
    done = buf("lint", changed)
    assert done.returncode != 0
    assert 'should be prefixed with "PERMISSION_"' in done.stdout + done.stderr


def test_protos_are_compatible_with_the_baseline() -> None:
    done = buf("breaking", PROTOS, "--against", BASELINE)
    assert done.returncode == 0, done.stdout + done.stderr


def _edited_copy(tmp_path: Path, old: str, new: str) -> Path:
    assert SOURCE.count(old) == 1, old
    root = tmp_path / "protos"
    shutil.copytree(PROTOS, root)
    (root / PROTO).write_text(SOURCE.replace(old, new))
    return root


@pytest.mark.parametrize(
    ("old", "new", "reported"),
    [
        # Renumbered: old clients put the secret where new ones no longer look.
        ("access_key_secret = 2;", "access_key_secret = 9;", 'field "2"'),
        # Retyped: int64 on the wire where clients send a bool.
        ("bool forbid_overwrite = 8;", "int64 forbid_overwrite = 8;", "forbid_overwrite"),
        # Renamed: same wire bytes, but the JSON mapping and generated code change.
        (
            "string player_id = 1;\n  // Name of a configured scope (bucket",
            "string player = 1;\n  // Name of a configured scope (bucket",
            "player_id",
        ),
        # An enum value gone: clients' "HTTP_METHOD_HEAD" no longer parses.
        ("  HTTP_METHOD_HEAD = 3;\n", "", 'enum value "3" on enum "HttpMethod"'),
        # An RPC gone.
        (
            "  rpc PresignObject(PresignObjectRequest) returns (PresignObjectResponse);\n",
            "",
            "PresignObject",
        ),
    ],
)
def test_an_incompatible_change_fails_buf_breaking(
    tmp_path: Path, old: str, new: str, reported: str
) -> None:
    changed = _edited_copy(tmp_path, old, new)
    done = buf("breaking", changed, "--against", BASELINE)
    assert done.returncode != 0, f"buf breaking let this through: {old!r} -> {new!r}"
    assert reported in done.stdout + done.stderr


def test_an_added_field_passes_buf_breaking(tmp_path: Path) -> None:
    changed = _edited_copy(
        tmp_path,
        "  bool forbid_overwrite = 8;\n",
        "  bool forbid_overwrite = 8;\n  // Added.\n  string cache_control = 10;\n",
    )
    done = buf("breaking", changed, "--against", BASELINE)
    assert done.returncode == 0, done.stdout + done.stderr
