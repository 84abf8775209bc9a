"""`satchel dev` talks to a person: its terminal has the banner and a text log, and its
audit lines go to a file under its data directory, which the banner names."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import grpc
import pytest
from support.processes import ServerProcess

from satchel.v1 import token_service_pb2 as pb
from satchel.v1 import token_service_pb2_grpc as pb_grpc
from satchel_server import dev_mode
from satchel_server.emulator.runner import Emulator
from satchel_server.wiring import dev_settings


def test_dev_writes_audit_lines_to_the_file_its_banner_names(
    spawn: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    args = ["-m", "satchel_server", "dev", "--listen", "127.0.0.1:0", "--data-dir", str(data)]
    dev = spawn(*args, stdout=True)
    address = dev.wait_for(r"  gRPC\s+(\S+)").group(1)
    audit = Path(dev.wait_for(r"  audit log\s+(\S+)").group(1))
    assert audit == data / "audit.jsonl"
    with grpc.insecure_channel(address) as channel:
        pb_grpc.TokenServiceStub(channel).IssueToken(
            pb.IssueTokenRequest(player_id="p1"), timeout=10
        )
    dev.terminate()
    assert dev.wait() == 0
    (line,) = audit.read_text().splitlines()
    assert json.loads(line)["player"] == "p1"
    terminal = "".join(dev.output)
    assert "satchel listening on" in terminal
    assert not [row for row in terminal.splitlines() if row.lstrip().startswith("{")]


@pytest.mark.parametrize(("configured", "expected"), [("stdout", "dev"), ("mine.jsonl", "mine")])
def test_dev_moves_only_stdout_audit_lines_to_its_file(
    tmp_path: Path, configured: str, expected: str
) -> None:
    emulator = cast(Emulator, SimpleNamespace(sts_url="http://127.0.0.1:1", oss_url="http://x"))
    files = {"dev": tmp_path / "audit.jsonl", "mine": tmp_path / "mine.jsonl"}
    output = configured if configured == "stdout" else str(files["mine"])
    settings = dev_mode.on_emulator(
        dev_settings("127.0.0.1:0", emulator, audit_output=output),
        emulator,
        listen="127.0.0.1:0",
        metrics_listen=dev_mode.DEV_METRICS_LISTEN,
        audit_file=files["dev"],
    )
    assert settings.audit.output == str(files[expected])
