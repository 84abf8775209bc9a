"""A game server installs the client alone: the README's commands in a fresh virtualenv.

The README's `pip install ./clients/python` runs as written, offline: `make` collects the
client's dependencies and its build backend into .venv/wheelhouse, and pip reads only
that (`--no-index --find-links`). Then the README's client snippet and `python -m satchel`
run with that interpreter against `satchel dev` on 127.0.0.1:0, and the virtualenv holds
the client and its three dependencies' distributions, nothing of the server's.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import REPO_ROOT, ServerProcess

README = (REPO_ROOT / "README.md").read_text()
SECTION = "## A game server needs only the client"
DOC_ADDRESS = "127.0.0.1:50051"
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"
SERVER_ONLY = {
    "satchel-server",
    "aiohttp",
    "redis",
    "cryptography",
    "prometheus-client",
    "grpcio-health-checking",
    "grpcio-reflection",
}
# grpcio, grpcio-status and protobuf, with what they pull in themselves.
CLIENT_CLOSURE = {
    "satchel",
    "grpcio",
    "grpcio-status",
    "protobuf",
    "googleapis-common-protos",
    "typing-extensions",
}
LIST_DISTRIBUTIONS = """
import importlib.metadata, importlib.util, json
names = {d.metadata["Name"] for d in importlib.metadata.distributions()}
server = importlib.util.find_spec("satchel_server") is not None
print(json.dumps({"names": sorted(n.lower().replace("_", "-") for n in names), "server": server}))
"""


def section_blocks(language: str) -> list[str]:
    section = README.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"^```{language}\n(.*?)^```", section, re.MULTILINE | re.DOTALL)


def readme_local_install() -> list[str]:
    """The section's `pip install` of a local path, as words."""
    for block in section_blocks("sh"):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] == ["pip", "install"] and words[2].startswith("./"):
                return words
    raise AssertionError(f"README's {SECTION!r} has no `pip install ./...`")


@pytest.fixture(scope="module")
def satchel_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("satchel-data")
    dev = ServerProcess(
        ["-m", "satchel_server", "dev", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)]
    )
    try:
        yield dev.wait_listening()
    finally:
        dev.terminate()
        dev.wait()


@pytest.fixture(scope="module")
def client_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv where the README's install command installed the client."""
    assert (WHEELHOUSE / ".complete").exists(), f"{WHEELHOUSE} is missing: run `make test`"
    root = tmp_path_factory.mktemp("game-server")
    # A copy, so the build leaves nothing in the source tree.
    shutil.copytree(
        REPO_ROOT / "clients" / "python",
        root / "clients" / "python",
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    pip, install, *targets = readme_local_install()
    offline = ["--no-index", "--find-links", str(WHEELHOUSE), "--disable-pip-version-check"]
    done = subprocess.run(
        [sys.executable, "-m", pip, "--python", python, install, *offline, *targets],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return python


def run(python: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # Run from a directory without the sources, so nothing imports from the tree.
    return subprocess.run(
        [python, *args],
        cwd=python.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_client_installs_without_anything_of_the_server(client_python: Path) -> None:
    done = run(client_python, "-c", LIST_DISTRIBUTIONS)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    installed = set(found["names"])
    assert not installed & SERVER_ONLY
    assert not found["server"], "satchel_server is importable"
    assert installed == CLIENT_CLOSURE


def test_the_readme_snippet_runs_with_the_client_alone(
    client_python: Path, satchel_dev: str
) -> None:
    (snippet,) = section_blocks("python")
    assert DOC_ADDRESS in snippet
    done = run(client_python, "-c", snippet.replace(DOC_ADDRESS, satchel_dev))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["players/p1/", "PUT", "True"]


def test_python_m_satchel_issues_and_presigns(client_python: Path, satchel_dev: str) -> None:
    def satchel(*args: str) -> subprocess.CompletedProcess[str]:
        return run(client_python, "-m", "satchel", *args, "--target", satchel_dev)

    issued = satchel("issue", "--player", "p1")
    assert issued.returncode == 0, issued.stderr
    assert json.loads(issued.stdout)["prefix"] == "players/p1/"
    presigned = satchel(
        "presign",
        "--player",
        "p1",
        "--key",
        "saves/a.dat",
        "--method",
        "PUT",
        "--content-length",
        "10",
    )
    assert presigned.returncode == 0, presigned.stderr
    assert json.loads(presigned.stdout)["key"] == "players/p1/saves/a.dat"
    refused = satchel("presign", "--player", "p1", "--key", "../p2/a.dat")
    assert refused.returncode == 1, refused.stderr
    error = json.loads(refused.stderr)["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert [v["field"] for v in error["field_violations"]] == ["key"]
