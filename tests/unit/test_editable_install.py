"""`make run` and `make test` install both distributions editable, and quietly.

setuptools makes an editable install a plain path entry only when a distribution's
packages sit under one declared root; otherwise it installs an import hook and warns
about it in the middle of `make run`. Each distribution is built here as pip would
build it (setuptools' PEP 660 hook, offline), and must come out as a plain path.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support.processes import REPO_ROOT

BUILD_EDITABLE = """
import sys
from setuptools import build_meta
print(build_meta.build_editable(sys.argv[1]))
"""


@pytest.mark.parametrize("project", [REPO_ROOT, REPO_ROOT / "clients" / "python"])
def test_an_editable_install_is_a_plain_path_with_no_warning(project: Path, tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-c", BUILD_EDITABLE, str(tmp_path)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    assert "Editable installation" not in built.stderr, built.stderr
    wheel = tmp_path / built.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as contents:
        (pth,) = [name for name in contents.namelist() if name.endswith(".pth")]
        entries = contents.read(pth).decode().split()
    assert entries
    assert all(Path(entry).is_dir() for entry in entries), entries  # no `import` hook
