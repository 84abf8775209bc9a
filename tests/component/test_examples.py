"""examples/ run for real: `satchel dev`, the game server, then each player-device script.

Each is its own process, as a developer would run them; the device scripts print JSON
summaries of what they did, which the tests check.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.processes import REPO_ROOT, ServerProcess

EXAMPLES = REPO_ROOT / "examples"


@pytest.fixture(scope="module")
def game_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`satchel dev` on 127.0.0.1:0 and the example game server in front of it: its base URL."""
    data_dir = tmp_path_factory.mktemp("satchel-data")
    dev = ServerProcess(
        ["-m", "satchel_server", "dev", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)]
    )
    game = None
    try:
        satchel_address = dev.wait_listening()
        game = ServerProcess(
            [
                str(EXAMPLES / "game_server.py"),
                "--satchel",
                satchel_address,
                "--listen",
                "127.0.0.1:0",
            ]
        )
        yield f"http://{game.wait_listening()}"
    finally:
        for proc in (game, dev):
            if proc is not None:
                proc.terminate()
                proc.wait()


def run_example(name: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def get_token(base: str, session: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{base}/oss/token", headers={"Authorization": f"Bearer {session}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_game_server_answers_in_the_mobile_sdk_format(game_server: str) -> None:
    status, body = get_token(game_server, "session-bob")
    assert status == 200
    token = json.loads(body)
    assert token["StatusCode"] == "200"
    assert token["AccessKeyId"].startswith("STS.")
    assert token["Prefix"] == "players/bob/"
    assert {
        "AccessKeySecret",
        "SecurityToken",
        "Expiration",
        "Bucket",
        "Endpoint",
        "Region",
    } <= set(token)


def test_game_server_refuses_unknown_sessions(game_server: str) -> None:
    status, _ = get_token(game_server, "session-mallory")
    assert status == 401


def test_device_uploads_a_save_with_oss2(game_server: str, tmp_path: Path) -> None:
    save = tmp_path / "slot1.dat"
    save.write_bytes(b"level=9")
    result = run_example("device_upload_oss2.py", "--game-server", game_server, "--save", str(save))
    assert result["uploaded"] == "players/alice/saves/slot1.dat"
    assert result["round_trip"] is True
    assert "players/alice/saves/slot1.dat" in result["listed"]
    assert result["other_player_folder"] == "AccessDenied"


def test_device_uses_presigned_put_and_post_form_over_plain_http(game_server: str) -> None:
    result = run_example(
        "device_presigned_http.py", "--game-server", game_server, "--session", "session-bob"
    )
    assert result["put"] == {"key": "players/bob/saves/slot2.dat", "status": 200}
    assert result["put_of_another_size"] == {"status": 403}
    assert result["post"] == {"key": "players/bob/saves/slot3.dat", "status": 204}
    assert result["post_over_the_cap"] == {"status": 400}
    assert result["downloaded_equal"] == [True, True]
