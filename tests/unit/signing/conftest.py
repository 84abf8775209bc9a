"""Fixtures for the signing tests: the SDK referee drivers and the vector files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

VECTORS = Path(__file__).resolve().parents[2] / "vectors"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"satchel_vectors_{name}", VECTORS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def sdk() -> ModuleType:
    """tests/vectors/sdk_reference.py: oss2, alibabacloud-oss-v2, aliyun-python-sdk-core."""
    return _load("sdk_reference")


@pytest.fixture(scope="session")
def documented() -> dict[str, Any]:
    return dict(json.loads((VECTORS / "documented.json").read_text()))


@pytest.fixture(scope="session")
def sdk_vectors() -> dict[str, Any]:
    return dict(json.loads((VECTORS / "sdk_vectors.json").read_text()))
