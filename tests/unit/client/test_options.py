"""Channel settings: retry service config, RetryInfo decisions, bearer metadata, TLS wiring."""

from __future__ import annotations

import json
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

import satchel
from satchel.client import RetryPolicy, Tls, _Settings
from satchel.errors import error_from_status


def settings(**kw: Any) -> _Settings:
    defaults: dict[str, Any] = {
        "api_key": None,
        "tls": None,
        "timeout": 5.0,
        "retry": None,
        "options": (),
    }
    return _Settings.of("127.0.0.1:1", **{**defaults, **kw})


def test_service_config_retries_unavailable_on_every_token_service_method() -> None:
    config = json.loads(RetryPolicy(max_attempts=4, initial_backoff=0.2).service_config())
    (method,) = config["methodConfig"]
    assert method["name"] == [{"service": "satchel.v1.TokenService"}]
    assert method["retryPolicy"] == {
        "maxAttempts": 4,
        "initialBackoff": "0.2s",
        "maxBackoff": "1.0s",
        "backoffMultiplier": 2.0,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }


def test_no_retries_drops_the_policy_and_disables_grpc_retries() -> None:
    config = json.loads(satchel.NO_RETRIES.service_config())
    assert "retryPolicy" not in config["methodConfig"][0]
    assert ("grpc.enable_retries", 0) in settings(retry=satchel.NO_RETRIES).channel_options()


@pytest.mark.parametrize(
    "bad",
    [
        {"max_attempts": 0},
        {"max_attempts": 6},
        {"server_delay_retries": -1},
        {"initial_backoff": 0},
        {"max_server_delay": -1},
    ],
)
def test_impossible_policies_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)


def unavailable(delay: float | None, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> Any:
    error = error_from_status(code, "busy")
    error.retry_delay = None if delay is None else timedelta(seconds=delay)
    return error


@pytest.mark.parametrize(
    ("error", "retries_so_far", "remaining", "expected"),
    [
        (unavailable(0.5), 0, 5.0, 0.5),
        (unavailable(0.5, grpc.StatusCode.RESOURCE_EXHAUSTED), 0, 5.0, 0.5),
        (unavailable(None), 0, 5.0, None),  # no RetryInfo: gRPC's own policy already retried
        (unavailable(0.5), 1, 5.0, None),  # bounded
        (unavailable(6.0), 0, 60.0, None),  # longer than max_server_delay
        (unavailable(2.0), 0, 1.5, None),  # would end after the deadline
        (unavailable(0.5, grpc.StatusCode.INVALID_ARGUMENT), 0, 5.0, None),
        (unavailable(0.5, grpc.StatusCode.DEADLINE_EXCEEDED), 0, 5.0, None),
    ],
)
def test_server_delay_is_honoured_only_when_it_can_help(
    error: Any, retries_so_far: int, remaining: float, expected: float | None
) -> None:
    assert RetryPolicy().server_delay(error, retries_so_far, remaining) == expected


def test_api_key_goes_out_as_a_bearer_header_and_never_in_repr() -> None:
    configured = settings(api_key=" sk_live_123\n")
    assert configured.metadata == (("authorization", "Bearer sk_live_123"),)
    assert "sk_live_123" not in repr(configured)
    assert settings().metadata == ()
    for bad in ("", "  ", "two words"):
        with pytest.raises(ValueError):
            settings(api_key=bad)
    client = satchel.SyncClient("127.0.0.1:1", api_key="sk_live_123")
    assert "sk_live_123" not in repr(client)
    client.close()


def test_target_and_timeout_are_checked() -> None:
    with pytest.raises(ValueError):
        _Settings.of("", api_key=None, tls=None, timeout=1, retry=None, options=())
    with pytest.raises(ValueError):
        settings(timeout=0)


def test_tls_files_reach_grpc_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_bytes(name.encode())
    seen: dict[str, Any] = {}

    def fake_credentials(**kw: Any) -> str:
        seen.update(kw)
        return "credentials"

    monkeypatch.setattr(grpc, "ssl_channel_credentials", fake_credentials)
    tls = Tls.from_files(
        tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem", server_name="satchel"
    )
    assert tls.channel_credentials() == "credentials"
    assert seen == {
        "root_certificates": b"ca.pem",
        "certificate_chain": b"cert.pem",
        "private_key": b"key.pem",
    }
    assert "key.pem" not in repr(tls)
    assert ("grpc.ssl_target_name_override", "satchel") in settings(tls=tls).channel_options()


def test_default_trust_store_and_half_a_client_certificate() -> None:
    assert Tls().root_certificates is None
    with pytest.raises(ValueError):
        Tls(certificate_chain=b"cert")
    with pytest.raises(ValueError):
        Tls(private_key=b"key")


@pytest.mark.parametrize(
    "target",
    ["game-backend.internal:50051", "10.0.0.7:50051", "dns:///satchel.prod:443", "[2001:db8::1]:1"],
)
def test_a_bearer_key_in_plaintext_beyond_this_machine_warns_the_caller(target: str) -> None:
    with pytest.warns(satchel.PlaintextKeyWarning, match="plaintext") as caught:
        satchel.SyncClient(target, api_key="sat_k_s").close()
    assert caught[0].filename == __file__  # pointed at the line that made the client


@pytest.mark.parametrize(
    ("target", "tls", "api_key"),
    [
        ("127.0.0.1:50051", None, "sat_k_s"),
        ("localhost:50051", None, "sat_k_s"),
        ("[::1]:50051", None, "sat_k_s"),
        ("ipv4:127.0.0.2:50051", None, "sat_k_s"),
        ("unix:/run/satchel.sock", None, "sat_k_s"),
        ("game-backend.internal:50051", Tls(), "sat_k_s"),
        ("game-backend.internal:50051", None, None),
    ],
)
def test_no_warning_on_loopback_over_tls_or_without_a_key(
    target: str, tls: Tls | None, api_key: str | None
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", satchel.PlaintextKeyWarning)
        satchel.SyncClient(target, api_key=api_key, tls=tls).close()
