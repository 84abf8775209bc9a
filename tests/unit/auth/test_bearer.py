"""Bearer keys: format, stored form, constant-time check, rotation."""

from __future__ import annotations

import hashlib

import pytest

from satchel_server.access.bearer import KeyTable, generate_key, key_id_of
from satchel_server.config import BEARER_KEY_ENTRY
from satchel_server.errors import Unauthenticated


def test_a_new_key_has_256_bits_of_secret_and_a_matching_config_entry() -> None:
    new = generate_key()
    prefix, key_id, secret = new.key.split("_")
    assert (prefix, key_id) == ("sat", new.key_id)
    assert len(secret) == 64
    assert int(secret, 16) >= 0
    assert BEARER_KEY_ENTRY.fullmatch(new.config_entry)
    assert new.config_entry == f"{key_id}:sha256:{hashlib.sha256(new.key.encode()).hexdigest()}"
    assert secret not in new.config_entry
    assert new.key not in repr(new)


def test_keys_are_never_the_same_twice() -> None:
    assert len({generate_key().key for _ in range(50)}) == 50


def table(**keys: tuple[str, ...]) -> KeyTable:
    return KeyTable.from_config(dict(keys))


def test_each_active_key_names_its_caller() -> None:
    old, new, other = generate_key(), generate_key(), generate_key()
    keys = table(eu=(old.config_entry, new.config_entry), us=(other.config_entry,))
    assert keys.caller_of(old.key) == ("eu", old.key_id)
    assert keys.caller_of(new.key) == ("eu", new.key_id)
    assert keys.caller_of(other.key) == ("us", other.key_id)


def test_a_rotated_out_key_is_refused() -> None:
    old, new = generate_key(), generate_key()
    keys = table(eu=(new.config_entry,))
    with pytest.raises(Unauthenticated, match="unknown or retired key id"):
        keys.caller_of(old.key)


def test_a_known_key_id_with_the_wrong_secret_is_refused() -> None:
    real = generate_key()
    forged = real.key[:-4] + ("0000" if not real.key.endswith("0000") else "1111")
    with pytest.raises(Unauthenticated, match="key does not match") as caught:
        table(eu=(real.config_entry,)).caller_of(forged)
    assert forged not in str(caught.value)


@pytest.mark.parametrize(
    "presented",
    ["", "sat_", "Bearer x", "sat_0123456789abcdef_" + "g" * 64, "sat_0123_" + "0" * 64],
)
def test_malformed_keys_are_refused_before_any_lookup(presented: str) -> None:
    with pytest.raises(Unauthenticated, match="malformed"):
        key_id_of(presented)
    with pytest.raises(Unauthenticated):
        table(eu=(generate_key().config_entry,)).caller_of(presented)
