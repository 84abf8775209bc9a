"""`satchel keygen`, and the refusal to serve open to the network."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from satchel_server.access.callers import Authenticator
from satchel_server.cli import EXIT_BAD_CONFIG, EXIT_OK, main
from satchel_server.config import settings_from_mapping

SCOPE = """
[scopes.saves]
bucket = "game-saves"
region = "cn-hangzhou"
role_arn = "acs:ram::1234567890123456:role/satchel"
endpoint = "https://oss-cn-hangzhou.aliyuncs.com"
"""
GRANT = '[callers.game-eu.scopes.saves]\npermissions = ["read"]\n'


def test_keygen_prints_a_key_and_the_exact_configuration_to_paste(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["keygen", "--caller", "game-eu"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    (key,) = [line for line in lines if line.startswith("sat_")]
    toml_text = "\n".join(line for line in lines if not line.startswith("sat_"))
    settings = settings_from_mapping(tomllib.loads(SCOPE + toml_text + "\n" + GRANT), {})
    (entry,) = settings.callers["game-eu"].keys
    assert key.rsplit("_", 1)[1] not in toml_text  # only the hash is configured
    caller = Authenticator(settings.callers).identify([f"Bearer {key}"], [])
    assert caller is not None
    assert (caller.name, caller.credential) == ("game-eu", entry.split(":")[0])


def test_keygen_refuses_a_caller_name_that_is_not_a_toml_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["keygen", "--caller", "Game EU"]) == EXIT_BAD_CONFIG
    assert "--caller" in capsys.readouterr().err


def test_serve_refuses_a_public_address_without_callers(spawn: Any, tmp_path: Path) -> None:
    config = tmp_path / "satchel.toml"
    config.write_text('[server]\nlisten = "0.0.0.0:0"\n' + SCOPE)
    keys = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-x", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "y"}
    proc = spawn("-m", "satchel_server", "serve", "--config", str(config), env=keys)
    assert proc.wait() == EXIT_BAD_CONFIG
    output = "".join(proc.output)
    assert "auth.allow_unauthenticated" in output
    assert "listening" not in output


def test_dev_refuses_a_public_address(spawn: Any, tmp_path: Path) -> None:
    proc = spawn(
        "-m", "satchel_server", "dev", "--listen", "0.0.0.0:0", "--data-dir", str(tmp_path)
    )
    assert proc.wait() == EXIT_BAD_CONFIG
    assert "not a loopback address" in "".join(proc.output)
