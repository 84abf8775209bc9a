"""Configuration: defaults, loading, and a clear message for each kind of mistake."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from support.processes import REPO_ROOT

from service.config import (
    ACCESS_KEY_ID_ENV,
    ACCESS_KEY_SECRET_ENV,
    CONFIG_PATH_ENV,
    AccessKey,
    LogSettings,
    ServerSettings,
    Settings,
    load_settings,
    settings_from_mapping,
)
from service.errors import ConfigError

EXAMPLE = REPO_ROOT / "satchel.example.toml"


def test_no_file_gives_the_documented_defaults() -> None:
    settings = load_settings(None, {})
    assert settings == Settings(source="defaults")
    assert settings.server.listen == "127.0.0.1:50051"
    assert settings.server.reflection is False
    assert settings.access_key is None


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_settings(None, {}).server.listen = "0.0.0.0:1"  # type: ignore[misc]


def test_file_values_override_defaults_and_integers_count_as_seconds(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[server]\nlisten = "[::1]:7000"\ngrace_seconds = 3\n[log]\nlevel = "DEBUG"\n')
    settings = load_settings(path, {})
    assert settings.server == ServerSettings(listen="[::1]:7000", grace_seconds=3.0)
    assert isinstance(settings.server.grace_seconds, float)
    assert settings.log == LogSettings(level="DEBUG")
    assert settings.source == str(path)


def test_path_comes_from_satchel_config_when_not_given(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[server]\nreflection = true\n")
    assert load_settings(None, {CONFIG_PATH_ENV: str(path)}).server.reflection is True


def test_example_file_is_valid_and_documents_every_key() -> None:
    document = tomllib.loads(EXAMPLE.read_text())
    settings = settings_from_mapping(document, {})
    assert settings.server == ServerSettings()  # the example shows the defaults
    for section, cls in (("server", ServerSettings), ("log", LogSettings)):
        assert set(document[section]) == {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize(
    ("document", "key", "problem"),
    [
        ({"serverz": {}}, "serverz", "unknown section"),
        ({"server": {"listn": "x"}}, "server.listn", "unknown key (known keys: grace_seconds"),
        ({"server": "127.0.0.1:1"}, "server", "must be a table"),
        ({"server": {"listen": 50051}}, "server.listen", "expected str, got int"),
        ({"server": {"listen": "localhost"}}, "server.listen", "expected HOST:PORT"),
        ({"server": {"listen": "h:99999"}}, "server.listen", "port 99999 is above 65535"),
        ({"server": {"listen": "[::1:80"}}, "server.listen", "IPv6 host must be written"),
        ({"server": {"grace_seconds": -1}}, "server.grace_seconds", "between 0 and 3600"),
        ({"server": {"grace_seconds": "5"}}, "server.grace_seconds", "expected float, got str"),
        ({"server": {"max_message_bytes": True}}, "server.max_message_bytes", "got a boolean"),
        ({"server": {"max_message_bytes": 10}}, "server.max_message_bytes", "between 4096"),
        ({"server": {"reflection": "yes"}}, "server.reflection", "expected bool, got str"),
        ({"log": {"level": "LOUD"}}, "log.level", "must be one of DEBUG, INFO"),
    ],
)
def test_each_mistake_names_its_key_and_problem(document: dict, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(document, {})
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert f"configuration key {key!r}" in str(caught.value)


def test_missing_file_and_bad_toml_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml", {})
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\nlisten=1")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(broken, {})


def test_access_key_comes_from_the_environment_and_hides_its_secret() -> None:
    environ = {ACCESS_KEY_ID_ENV: "LTAI-example-id", ACCESS_KEY_SECRET_ENV: "s3cr3t-value"}
    settings = settings_from_mapping({}, environ)
    assert settings.access_key == AccessKey("LTAI-example-id", "s3cr3t-value")
    assert "s3cr3t-value" not in repr(settings)
    assert "LTAI-example-id" in repr(settings)


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({ACCESS_KEY_ID_ENV: "id"}, ACCESS_KEY_SECRET_ENV),
        ({ACCESS_KEY_SECRET_ENV: "s3cr3t-value"}, ACCESS_KEY_ID_ENV),
    ],
)
def test_half_an_access_key_is_an_error_that_never_echoes_the_secret(
    environ: dict[str, str], missing: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({}, environ)
    assert caught.value.key == missing
    assert "s3cr3t-value" not in str(caught.value)
