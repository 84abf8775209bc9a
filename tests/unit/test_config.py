"""Configuration: defaults, loading, and a clear message for each kind of mistake."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from support.processes import REPO_ROOT

from satchel_server.config import (
    ACCESS_KEY_ID_ENV,
    ACCESS_KEY_SECRET_ENV,
    CONFIG_PATH_ENV,
    SECTIONS,
    SESSION_NAME_KEY_ENV,
    AccessKey,
    CallerSettings,
    GrantSettings,
    LogSettings,
    ScopeSettings,
    ServerSettings,
    Settings,
    load_settings,
    require_complete,
    settings_from_mapping,
)
from satchel_server.errors import ConfigError

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


def test_example_file_is_valid_shows_the_defaults_and_documents_every_key() -> None:
    document = tomllib.loads(EXAMPLE.read_text())
    settings = settings_from_mapping(document, {})
    defaults = Settings()
    for section, cls in SECTIONS.items():  # every table, so a new one cannot be missed
        assert getattr(settings, section) == getattr(defaults, section), section
        assert set(document[section]) == {f.name for f in dataclasses.fields(cls)}
    documented_scope = set(document["scopes"]["saves"]) | {"name"}
    assert documented_scope == {f.name for f in dataclasses.fields(ScopeSettings)}
    assert settings.scopes["saves"].default
    caller_table = document["callers"]["game-eu"]
    assert set(caller_table) | {"name"} == {f.name for f in dataclasses.fields(CallerSettings)}
    caller = settings.callers["game-eu"]
    assert (caller.rate_per_second, caller.burst) == (
        CallerSettings(name="x").rate_per_second,
        CallerSettings(name="x").burst,
    )
    documented_grant = set(caller_table["scopes"]["saves"]) | {"scope"}
    assert documented_grant == {f.name for f in dataclasses.fields(GrantSettings)}


SCOPE_TABLE = {
    "bucket": "game-saves",
    "region": "cn-hangzhou",
    "role_arn": "acs:ram::1234567890123456:role/satchel",
    "endpoint": "https://oss-cn-hangzhou.aliyuncs.com",
}


def test_a_lone_scope_is_the_default_and_lists_become_tuples() -> None:
    table = {**SCOPE_TABLE, "permissions": ["read", "write", "read"]}
    settings = settings_from_mapping({"scopes": {"saves": table}}, {})
    scope = settings.scopes["saves"]
    assert scope.default is True
    assert scope.name == "saves"
    assert scope.permissions == ("read", "write")


@pytest.mark.parametrize(
    ("scopes", "key", "problem"),
    [
        ({}, "scopes", "at least one"),
        ({"Saves!": SCOPE_TABLE}, "scopes.Saves!", "a scope name is"),
        ({"a": SCOPE_TABLE, "b": SCOPE_TABLE}, "scopes", "exactly one scope must say default"),
        (
            {"a": {**SCOPE_TABLE, "default": True}, "b": {**SCOPE_TABLE, "default": True}},
            "scopes",
            "exactly one",
        ),
        (
            {"s": {k: v for k, v in SCOPE_TABLE.items() if k != "bucket"}},
            "scopes.s.bucket",
            "is required",
        ),
        ({"s": {**SCOPE_TABLE, "bucket": "Bad_Bucket"}}, "scopes.s.bucket", "must look like"),
        (
            {"s": {**SCOPE_TABLE, "role_arn": "arn:aws:iam::1:role/x"}},
            "scopes.s.role_arn",
            "must look like",
        ),
        (
            {"s": {**SCOPE_TABLE, "endpoint": "oss-cn-hangzhou.aliyuncs.com"}},
            "scopes.s.endpoint",
            "must look like",
        ),
        (
            {"s": {**SCOPE_TABLE, "prefix_template": "players/"}},
            "scopes.s.prefix_template",
            "exactly once",
        ),
        (
            {"s": {**SCOPE_TABLE, "prefix_template": "players/{player_id}"}},
            "scopes.s.prefix_template",
            "must end with '/'",
        ),
        (
            {"s": {**SCOPE_TABLE, "prefix_template": "p*/{player_id}/"}},
            "scopes.s.prefix_template",
            "wildcards",
        ),
        (
            {"s": {**SCOPE_TABLE, "prefix_template": "../{player_id}/"}},
            "scopes.s.prefix_template",
            "'..' segments",
        ),
        (
            {"s": {**SCOPE_TABLE, "permissions": ["read", "admin"]}},
            "scopes.s.permissions",
            "unknown permission 'admin'",
        ),
        (
            {"s": {**SCOPE_TABLE, "permissions": "read"}},
            "scopes.s.permissions",
            "expected a list of strings",
        ),
        (
            {"s": {**SCOPE_TABLE, "permissions": ["read"], "default_permissions": ["write"]}},
            "scopes.s.default_permissions",
            "subset",
        ),
        ({"s": {**SCOPE_TABLE, "ttl_min_seconds": 600}}, "scopes.s.ttl_min_seconds", "between 900"),
        (
            {"s": {**SCOPE_TABLE, "ttl_default_seconds": 4000}},
            "scopes.s.ttl_default_seconds",
            "between ttl_min_seconds and ttl_max_seconds",
        ),
        (
            {"s": {**SCOPE_TABLE, "player_id_pattern": "(["}},
            "scopes.s.player_id_pattern",
            "not a valid regular expression",
        ),
        (
            {"s": {**SCOPE_TABLE, "policy_max_chars": 4096}},
            "scopes.s.policy_max_chars",
            "between 256 and 2048",
        ),
        # OSS refuses presigned URLs that live longer than seven days, V1 or V4.
        (
            {"s": {**SCOPE_TABLE, "presign_expires_max_seconds": 604801}},
            "scopes.s.presign_expires_max_seconds",
            "between 1 and 604800",
        ),
    ],
)
def test_each_scope_mistake_names_its_key(scopes: dict, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"scopes": scopes}, {})
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_serving_needs_scopes_and_its_identity_is_resolved_at_start() -> None:
    environ = {ACCESS_KEY_ID_ENV: "LTAI-id", ACCESS_KEY_SECRET_ENV: "s3cr3t"}
    with pytest.raises(ConfigError, match="at least one"):
        require_complete(settings_from_mapping({}, environ))
    # No key in the environment is no longer a config error: another source may yield one.
    require_complete(settings_from_mapping({"scopes": {"s": SCOPE_TABLE}}, {}))
    require_complete(settings_from_mapping({"scopes": {"s": SCOPE_TABLE}}, environ))


@pytest.mark.parametrize(
    ("document", "key", "problem"),
    [
        (
            {"serverz": {}},
            "serverz",
            "unknown section (known: audit, auth, cache, callers, identity, limits, log, "
            "metrics, scopes, server, sts, tls)",
        ),
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


@pytest.mark.parametrize(
    ("key", "described"),
    [
        ("--listen", "--listen: "),
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "environment variable ALIBABA_CLOUD_ACCESS_KEY_ID: "),
        ("scopes.saves.bucket", "configuration key 'scopes.saves.bucket': "),
    ],
)
def test_a_config_error_names_a_flag_a_variable_or_a_key_as_such(key: str, described: str) -> None:
    assert str(ConfigError(key, "is wrong")) == f"{described}is wrong"


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


def test_the_session_name_key_comes_from_the_environment_and_stays_out_of_reprs() -> None:
    assert settings_from_mapping({}, {}).session_name_key is None
    value = "a-deployment-wide-secret-of-32-c"
    settings = settings_from_mapping({}, {SESSION_NAME_KEY_ENV: value})
    assert settings.session_name_key == value.encode()
    assert value not in repr(settings)
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({}, {SESSION_NAME_KEY_ENV: "short"})
    assert caught.value.key == SESSION_NAME_KEY_ENV
    assert "short" not in str(caught.value)
