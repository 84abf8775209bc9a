"""`satchel issue` / `satchel presign` argument parsing: durations, permissions, key, TLS."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

import pytest

from satchel import Method, Permission, cli
from satchel_server.cli import _parser


def parse(*argv: str) -> argparse.Namespace:
    return _parser().parse_args(list(argv))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("900", 900), ("90s", 90), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("7d", 604800)],
)
def test_durations(text: str, seconds: int) -> None:
    assert cli.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "15x", "m", "1.5h", "-5m", "15m junk"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_duration(text)


def test_permissions_and_methods() -> None:
    assert cli.parse_permissions("read, WRITE,list") == [
        Permission.READ,
        Permission.WRITE,
        Permission.LIST,
    ]
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_permissions("read,admin")
    assert cli.parse_method("put") is Method.PUT
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_method("PATCH")


def test_issue_and_presign_are_satchel_commands() -> None:
    issue = parse("issue", "--player", "p1", "--permissions", "read,write", "--ttl", "20m")
    assert (issue.command, issue.player, issue.ttl) == ("issue", "p1", timedelta(minutes=20))
    assert issue.permissions == [Permission.READ, Permission.WRITE]
    presign = parse(
        "presign", "--player", "p1", "--key", "save.dat", "--method", "POST", "--max-size", "10"
    )
    assert (presign.method, presign.max_size, presign.forbid_overwrite) == (Method.POST, 10, False)
    assert presign.expires is None


def test_key_file_wins_over_the_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    with_file = parse("issue", "--player", "p1", "--key-file", str(key_file))
    assert cli.api_key_from(with_file, {cli.API_KEY_ENV: "from-env"}) == "from-file"
    without = parse("issue", "--player", "p1")
    assert cli.api_key_from(without, {cli.API_KEY_ENV: "from-env"}) == "from-env"
    assert cli.api_key_from(without, {}) is None
    missing = parse("issue", "--player", "p1", "--key-file", str(tmp_path / "nope"))
    with pytest.raises(cli.UsageError, match="--key-file"):
        cli.api_key_from(missing, {})


def test_tls_options(tmp_path: Path) -> None:
    assert cli.tls_from(parse("issue", "--player", "p1")) is None
    default_roots = cli.tls_from(parse("issue", "--player", "p1", "--tls"))
    assert default_roots is not None
    assert default_roots.root_certificates is None
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"CA")
    tls = cli.tls_from(
        parse(
            "presign", "--player", "p", "--key", "k", "--tls-ca", str(ca), "--tls-server-name", "s"
        )
    )
    assert tls is not None
    assert (tls.root_certificates, tls.server_name) == (b"CA", "s")
    with pytest.raises(cli.UsageError, match="go together"):
        cli.tls_from(parse("issue", "--player", "p1", "--tls-cert", str(ca)))
    with pytest.raises(cli.UsageError, match="cannot read"):
        cli.tls_from(parse("issue", "--player", "p1", "--tls-ca", str(tmp_path / "nope")))


def test_usage_errors_exit_2_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("issue", "--player", "p1", "--key-file", str(tmp_path / "nope"))
    assert cli.run(args, environ={}) == cli.EXIT_USAGE
    assert "satchel issue: --key-file" in capsys.readouterr().err
