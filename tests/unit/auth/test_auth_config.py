"""The [callers], [tls], [auth], [limits] and [audit] tables, and the open-door refusal."""

from __future__ import annotations

from typing import Any

import pytest

from satchel_server.access.bearer import generate_key
from satchel_server.config import (
    is_loopback,
    require_caller_authentication,
    settings_from_mapping,
)
from satchel_server.errors import ConfigError

SCOPE = {
    "bucket": "game-saves",
    "region": "cn-hangzhou",
    "role_arn": "acs:ram::1234567890123456:role/satchel",
    "endpoint": "https://oss-cn-hangzhou.aliyuncs.com",
}
KEY = generate_key().config_entry
GRANT = {"saves": {"permissions": ["read"]}}
TLS = {"cert_file": "server.crt", "key_file": "server.key", "client_ca_file": "ca.crt"}


def document(callers: dict[str, Any] | None = None, **sections: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"scopes": {"saves": SCOPE}, **sections}
    if callers is not None:
        found["callers"] = callers
    return found


def test_callers_grants_and_sections_load() -> None:
    settings = settings_from_mapping(
        document(
            {
                "eu": {
                    "keys": [KEY],
                    "cert_sans": ["spiffe://studio/eu"],
                    "rate_per_second": 3,
                    "scopes": {"saves": {"methods": ["GET", "GET"], "player_id_pattern": "eu-.*"}},
                }
            },
            tls=TLS,
            limits={"player_rate_per_second": 0},
            audit={"output": "/var/log/satchel/audit.jsonl"},
        ),
        {},
    )
    eu = settings.callers["eu"]
    assert eu.name == "eu"
    assert eu.keys == (KEY,)
    assert eu.rate_per_second == 3.0
    assert eu.scopes["saves"].scope == "saves"
    assert eu.scopes["saves"].methods == ("GET",)
    assert eu.scopes["saves"].permissions == ()
    assert settings.limits.player_rate_per_second == 0.0


@pytest.mark.parametrize(
    ("doc", "key", "problem"),
    [
        (document({"eu": {"scopes": GRANT}}), "callers.eu.keys", "needs keys or cert_sans"),
        (document({"eu": {"keys": ["abc"], "scopes": GRANT}}), "callers.eu.keys", "KEYID:sha256"),
        (document({"eu": {"keys": [KEY]}}), "callers.eu.scopes", "must hold"),
        (document({"EU!": {"keys": [KEY], "scopes": GRANT}}), "callers.EU!", "NAME is 1-32"),
        (document({"eu": [1]}), "callers.eu", "a [callers.NAME] table"),
        (
            document({"eu": {"keys": [KEY], "scopes": {"nope": {"permissions": ["read"]}}}}),
            "callers.eu.scopes.nope",
            "no such scope",
        ),
        (
            document({"eu": {"keys": [KEY], "scopes": {"saves": {}}}}),
            "callers.eu.scopes.saves.permissions",
            "must allow some permissions or methods",
        ),
        (
            document({"eu": {"keys": [KEY], "scopes": {"saves": {"methods": ["PATCH"]}}}}),
            "callers.eu.scopes.saves.methods",
            "unknown method 'PATCH'",
        ),
        (
            document({"eu": {"keys": [KEY], "scopes": {"saves": {"permissions": ["admin"]}}}}),
            "callers.eu.scopes.saves.permissions",
            "unknown permission",
        ),
        (
            document({"eu": {"keys": [KEY], "scopes": {"saves": {"methods": ["GET"], "x": 1}}}}),
            "callers.eu.scopes.saves.x",
            "unknown key",
        ),
        (
            document(
                {"a": {"keys": [KEY], "scopes": GRANT}, "b": {"keys": [KEY], "scopes": GRANT}}
            ),
            "callers.b.keys",
            "already names caller 'a'",
        ),
        (
            document(
                {
                    "a": {"cert_sans": ["x.internal"], "scopes": GRANT},
                    "b": {"cert_sans": ["x.internal"], "scopes": GRANT},
                },
                tls=TLS,
            ),
            "callers.b.cert_sans",
            "already names caller 'a'",
        ),
        (
            document({"eu": {"cert_sans": ["x.internal"], "scopes": GRANT}}),
            "tls.client_ca_file",
            "is required when a caller has cert_sans",
        ),
        (
            document({"eu": {"keys": [KEY], "scopes": GRANT}}, tls=TLS),
            "tls.client_ca_file",
            "no [callers.NAME] has cert_sans",
        ),
        (document(tls={"cert_file": "a.crt"}), "tls.key_file", "both or neither"),
        (document(tls={"client_ca_file": "ca.crt"}), "tls.client_ca_file", "set cert_file"),
        (document(limits={"player_burst": 0}), "limits.player_burst", "between 1"),
        (document(audit={"output": ""}), "audit.output", "must not be empty"),
        (document(auth={"allow_unauthenticated": "yes"}), "auth.allow_unauthenticated", "bool"),
    ],
)
def test_each_mistake_names_its_key(doc: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(doc, {})
    assert caught.value.key == key
    assert problem in caught.value.problem


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("[::]", False),
        ("10.0.0.5", False),
        ("satchel.internal", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_an_open_server_may_not_listen_beyond_loopback_unless_told_so() -> None:
    exposed = {"listen": "0.0.0.0:50051"}
    with pytest.raises(ConfigError) as caught:
        require_caller_authentication(settings_from_mapping(document(server=exposed), {}))
    assert caught.value.key == "auth.allow_unauthenticated"
    assert "allow_unauthenticated = true" in caught.value.problem
    require_caller_authentication(
        settings_from_mapping(document(server=exposed, auth={"allow_unauthenticated": True}), {})
    )
    require_caller_authentication(
        settings_from_mapping(
            document({"eu": {"keys": [KEY], "scopes": GRANT}}, server=exposed), {}
        )
    )
    require_caller_authentication(settings_from_mapping(document(), {}))  # 127.0.0.1
