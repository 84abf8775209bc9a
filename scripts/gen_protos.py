"""Regenerate the committed protobuf and gRPC stubs from protos/.

Usage: python scripts/gen_protos.py [OUTPUT_ROOT]

OUTPUT_ROOT defaults to clients/python, so the stubs land in
clients/python/satchel/v1/. The drift test calls this with a temporary
directory and compares the result with what is committed.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "protos"
DEFAULT_OUTPUT_ROOT = REPO_ROOT / "clients" / "python"


def proto_files() -> list[Path]:
    # Satchel's own files only: google/rpc/status.proto is vendored for buf and proto
    # loaders; Python imports its stubs from googleapis-common-protos (grpcio-status).
    return sorted((PROTO_ROOT / "satchel").rglob("*.proto"))


def _plugin(name: str) -> str:
    """Locate a protoc plugin installed beside this interpreter (mypy-protobuf)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: install the test extra (mypy-protobuf)")
    return found


def generate(output_root: Path) -> None:
    output_root.mkdir(parents=True, exist_ok=True)
    # protoc's own well-known types (timestamp, duration) ship inside grpc_tools.
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={output_root}",
        f"--grpc_python_out={output_root}",
        f"--mypy_out={output_root}",
        f"--mypy_grpc_out={output_root}",
        *(os.fspath(path.relative_to(PROTO_ROOT)) for path in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT_ROOT)
