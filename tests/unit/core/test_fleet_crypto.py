"""What reaches Redis: keyed-hash names and AES-256-GCM blobs bound to their names."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from support.fakes import START

from satchel_server.config import CACHE_KEYS_ENV, settings_from_mapping
from satchel_server.credentials.broker import AssumeRoleResult
from satchel_server.credentials.types import TemporaryCredentials
from satchel_server.errors import ConfigError
from satchel_server.fleet.crypto import Keyring
from satchel_server.fleet.redis_store import decode, encode

OLD = ("old", b"\x01" * 32)
NEW = ("new", b"\x02" * 32)


def result() -> AssumeRoleResult:
    creds = TemporaryCredentials("STS.abc", "s3cr3t", "t0k3n", START + timedelta(hours=1))
    return AssumeRoleResult(creds, "req-1")


def test_a_sealed_entry_opens_to_what_went_in_and_shows_nothing() -> None:
    ring = Keyring([OLD])
    name = ring.name(["player", "saves", "player-42", "read", "digest"])
    blob = ring.seal(name, encode(result()))
    for clear in (b"STS.abc", b"s3cr3t", b"t0k3n", b"player-42", b"req-1"):
        assert clear not in blob
        assert clear not in name.encode()
    opened = ring.open(name, blob)
    assert opened is not None
    assert decode(opened) == result()


def test_names_are_keyed_and_unambiguous() -> None:
    ring = Keyring([OLD])
    assert ring.name(["a", "bc"]) != ring.name(["ab", "c"])
    assert ring.name(["a"]) != Keyring([NEW]).name(["a"])  # not a plain hash anyone can redo
    assert ring.name(["a"]) == Keyring([OLD, NEW]).name(["a"])


def test_a_blob_moved_to_another_name_or_tampered_with_does_not_open() -> None:
    ring = Keyring([OLD])
    blob = ring.seal("name-a", b"payload")
    assert ring.open("name-b", blob) is None
    assert ring.open("name-a", blob[:-1] + bytes([blob[-1] ^ 1])) is None
    assert ring.open("name-a", b"") is None


def test_rotation_opens_with_any_key_and_seals_with_the_first() -> None:
    sealed_by_old = Keyring([OLD]).seal("n", b"payload")
    rotated = Keyring([NEW, OLD])
    assert rotated.open("n", sealed_by_old) == b"payload"
    sealed_by_new = rotated.seal("n", b"payload")
    assert Keyring([NEW]).open("n", sealed_by_new) == b"payload"
    assert Keyring([OLD]).open("n", sealed_by_new) is None  # a key it lacks: a miss, no error
    assert "\\x01" not in repr(rotated)
    assert "new" in repr(rotated)


def encoded(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_keys_come_from_the_environment_and_are_never_printed() -> None:
    environ = {CACHE_KEYS_ENV: f"new:{encoded(NEW[1])}, old:{encoded(OLD[1])}"}
    settings = settings_from_mapping({"cache": {"url": "rediss://cache:6380/0"}}, environ)
    assert settings.cache_secrets is not None
    assert settings.cache_secrets.keys == (NEW, OLD)
    assert encoded(NEW[1]) not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({}, "must be set when [cache] url is"),
        ({CACHE_KEYS_ENV: "k1:" + encoded(b"short")}, "entry 1 must be ID:BASE64"),
        ({CACHE_KEYS_ENV: encoded(b"\x03" * 32)}, "entry 1 must be ID:BASE64"),
        ({CACHE_KEYS_ENV: "k1:not base64!"}, "entry 1 must be ID:BASE64"),
        ({CACHE_KEYS_ENV: f"k1:{encoded(NEW[1])},k1:{encoded(OLD[1])}"}, "appears twice"),
    ],
)
def test_bad_keys_stop_the_start_without_echoing_them(
    environ: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"cache": {"url": "redis://127.0.0.1:6379/0"}}, environ)
    assert caught.value.key == CACHE_KEYS_ENV
    assert problem in caught.value.problem
    for value in environ.values():
        assert value.rpartition(":")[2] not in str(caught.value)


def test_a_url_must_be_redis_and_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"cache": {"url": "http://user:hunter2@cache:6379"}}, {})
    assert caught.value.key == "cache.url"
    assert "hunter2" not in str(caught.value)
