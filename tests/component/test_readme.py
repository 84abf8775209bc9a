"""README.md's commands, extracted from the file itself so the README cannot drift.

The quick start runs as a person runs it, against `satchel dev` in its own process: its
shell blocks (the CLI, and curl's presigned PUT, POST form and GET) run in `sh` with
$SATCHEL_TARGET pointing at that server, its Python block runs as pasted.

grpcurl is not installed here (nor packaged by Debian or npm), so its calls are replayed
the way grpcurl makes them: the service and message types come from the server's
reflection service, the `-d` JSON goes through protobuf's JSON mapping
(`json_format.Parse`) into the request, then the call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from component.emulator_fixtures import emulator
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from support.processes import REPO_ROOT, ServerProcess
from support.stack import running_stack
from support.tls_certs import make_pki

import satchel
from satchel_server.access.bearer import generate_key
from satchel_server.cli import main
from satchel_server.config import CallerSettings, GrantSettings, TlsSettings
from satchel_server.emulator.runner import Emulator
from satchel_server.wiring import dev_settings

__all__ = ["emulator"]

README = (REPO_ROOT / "README.md").read_text()
DOC_ADDRESS = "127.0.0.1:50051"


def blocks(language: str, text: str = README) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def commands(program: str) -> list[list[str]]:
    """Every `program ...` command in the README's sh blocks, continuation lines joined."""
    found = []
    for block in blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith(f"{program} "):
                found.append(shlex.split(line, comments=True)[1:])
    return found


GRPCURL = commands("grpcurl")
SATCHEL = commands("satchel")


def test_the_readme_has_what_the_quick_start_promises() -> None:
    assert "## Two commands" in README
    calls = [c[-1] for c in GRPCURL]
    assert {"list", "satchel.v1.TokenService"} <= set(calls)
    assert "satchel.v1.TokenService/IssueToken" in calls
    assert "satchel.v1.TokenService/PresignObject" in calls
    assert {c[0] for c in SATCHEL} >= {"issue", "presign"}


QUICK_START = section("Five-minute quick start")
# The blocks a person runs in the second terminal; `make run` is the first, and
# examples/ (long-running servers) run in tests/component/test_examples.py.
QUICK_START_SHELL = [
    block
    for block in blocks("sh", QUICK_START)
    if not block.startswith("make ") and "examples/" not in block
]
VENV_BIN = ".venv/bin/"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`satchel dev` in its own process, as `make run` runs it: its gRPC address."""
    data_dir = tmp_path_factory.mktemp("satchel-data")
    server = ServerProcess(
        ["-m", "satchel_server", "dev", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)]
    )
    try:
        yield server.wait_listening()
    finally:
        server.terminate()
        server.wait()


def run_shell(block: str, target: str, cwd: Path) -> str:
    """The block in POSIX sh, stopping at the first failure; .venv/bin is this test's venv."""
    script = block.replace(VENV_BIN, f"{Path(sys.executable).parent}/")
    done = subprocess.run(
        ["sh", "-eu", "-c", script],
        cwd=cwd,
        env={**os.environ, "SATCHEL_TARGET": target},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{block}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return done.stdout


def test_the_quick_start_shows_the_cli_and_curl_with_presigned_put_post_and_get() -> None:
    shell = "\n".join(QUICK_START_SHELL)
    assert f"{VENV_BIN}satchel issue --player p1" in shell
    curls = [line for line in shell.replace("\\\n", " ").splitlines() if "curl " in line]
    put = [c for c in curls if "-X PUT" in c]
    assert put
    assert "-H 'Content-Type: application/octet-stream'" in put[0]
    assert any("--form-string policy=" in c and "-F 'file=@-" in c for c in curls)
    assert any("-X" not in c and "--form-string" not in c for c in curls)  # the GET


def test_quick_start_cli_runs_against_satchel_dev(dev: str, tmp_path: Path) -> None:
    (cli,) = [block for block in QUICK_START_SHELL if "curl " not in block]
    assert json.loads(run_shell(cli, dev, tmp_path))["prefix"] == "players/p1/"


def test_quick_start_curl_puts_posts_and_gets_against_satchel_dev(dev: str, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed here: the README's curl examples cannot run")
    (curls,) = [block for block in QUICK_START_SHELL if "curl " in block]
    with satchel.SyncClient(dev) as client:
        form = client.presign("p1", "saves/slot2.dat", "POST", max_size=1048576).form_fields
    # Every field the server's form carries, and no other, or OSS refuses the upload.
    assert set(re.findall(r"--form-string ([\w-]+)=", curls)) == set(form)
    # The GET printed what the POST form uploaded, and the PUT's object is there too.
    assert run_shell(curls, dev, tmp_path) == "slot 2"
    with satchel.SyncClient(dev) as client:
        url = client.presign("p1", "saves/slot1.dat", satchel.Method.GET).url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"slot 1"


class Grpcurl:
    """The slice of grpcurl the README uses: -plaintext, -d, list, describe, calls."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.database = ProtoReflectionDescriptorDatabase(channel)
        self.pool = descriptor_pool.DescriptorPool(self.database)

    def run(self, args: list[str]) -> Any:
        data = None
        rest = []
        words = iter(args)
        for word in words:
            if word == "-d":
                data = next(words)
            elif word != "-plaintext":
                rest.append(word)
        assert rest[0] == DOC_ADDRESS, f"README calls {rest[0]}, not the dev address"
        verb = rest[1:]
        if verb == ["list"]:
            return sorted(self.database.get_services())
        if verb[0] == "describe":
            service = self.pool.FindServiceByName(verb[1])
            return [m.name for m in service.methods]
        return self.call(verb[0], data or "{}")

    def call(self, path: str, data: str) -> dict[str, Any]:
        service_name, method_name = path.rsplit("/", 1)
        method = self.pool.FindServiceByName(service_name).methods_by_name[method_name]
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        request = json_format.Parse(data, request_class())
        rpc = self.channel.unary_unary(
            f"/{service_name}/{method_name}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        return json_format.MessageToDict(rpc(request, timeout=10))


def test_grpcurl_examples_work_through_reflection_and_the_json_mapping(dev: str) -> None:
    with grpc.insecure_channel(dev) as channel:
        grpcurl = Grpcurl(channel)
        # Address swapped only here, so the README keeps the real dev address.
        outputs = [grpcurl.run(args) for args in GRPCURL]
    listed = outputs[[c[-1] for c in GRPCURL].index("list")]
    assert {"satchel.v1.TokenService", "grpc.health.v1.Health"} <= set(listed)
    assert ["IssueToken", "PresignObject", "PresignObjects"] in outputs  # describe
    tokens = [o for o in outputs if isinstance(o, dict) and "credentials" in o]
    presigns = [o for o in outputs if isinstance(o, dict) and "url" in o]
    assert tokens
    assert len(presigns) == 2
    assert all(t["location"]["prefix"] == "players/p1/" for t in tokens)
    assert {p["method"] for p in presigns} == {"HTTP_METHOD_PUT", "HTTP_METHOD_POST"}
    assert {"status": "SERVING"} in outputs
    [many] = [o["results"] for o in outputs if isinstance(o, dict) and "results" in o]
    assert [sorted(result) for result in many] == [["presigned"], ["presigned"], ["error"]]
    assert many[2]["error"]["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def run_python(source: str) -> list[str]:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, "README.md", "exec"), {})
    return printed.getvalue().splitlines()


def test_quick_start_python_runs_as_pasted(dev: str) -> None:
    (quick_start,) = blocks("python", QUICK_START)
    assert DOC_ADDRESS in quick_start
    lines = run_python(quick_start.replace(DOC_ADDRESS, dev))
    assert lines[0].startswith("Token(")
    assert json.loads(lines[1])["Prefix"] == "players/p1/"


CLIENT_ADDRESS = "satchel.internal:443"


@pytest.mark.asyncio
async def test_client_options_snippet_runs_against_an_mtls_server_with_a_bearer_key(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The options snippet, as written, against a server that wants both TLS and a key."""
    (snippet,) = [block for block in blocks("python") if CLIENT_ADDRESS in block]
    pki = make_pki()
    paths = pki.write(tmp_path)
    key = generate_key()
    grant = GrantSettings(scope="dev", permissions=("read",), methods=("PUT",))
    tls = TlsSettings(
        cert_file=str(paths["server_cert"]),
        key_file=str(paths["server_key"]),
        client_ca_file=str(paths["ca_cert"]),
    )
    settings = dataclasses.replace(
        dev_settings("127.0.0.1:0", emulator),
        callers={
            "game": CallerSettings(name="game", keys=(key.config_entry,), scopes={"dev": grant})
        },
        tls=tls,
    )
    # The files and the variable the snippet names, where it looks for them.
    (tmp_path / "ca.pem").write_bytes(pki.ca.cert)
    (tmp_path / "client.pem").write_bytes(pki.client.cert)
    (tmp_path / "client.key").write_bytes(pki.client.key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SATCHEL_API_KEY", key.key)
    async with running_stack(emulator, settings) as running:
        # The server's certificate names 127.0.0.1: only the address changes.
        body = snippet.replace(CLIENT_ADDRESS, running.server.address) + "return token, url\n"
        source = "async def snippet():\n" + "".join(f"    {line}\n" for line in body.splitlines())
        # What the README's text has already imported by this point.
        namespace: dict[str, Any] = {"satchel": satchel, "os": os, "timedelta": timedelta}
        exec(compile(source, "README.md", "exec"), namespace)
        token, url = await namespace["snippet"]()
    assert token.location.prefix == "players/p1/"
    assert [str(p) for p in token.permissions] == ["read"]
    assert token.credentials.expiration - datetime.now(UTC) <= timedelta(minutes=31)
    assert url.method == satchel.Method.PUT
    assert url.key == "players/p1/saves/slot1.dat"


def test_cli_examples_print_json(dev: str, capsys: pytest.CaptureFixture[str]) -> None:
    for args in SATCHEL:
        if args[0] not in ("issue", "presign"):
            continue
        code = main([*args, "--target", dev])
        captured = capsys.readouterr()
        assert code == 0, (args, captured.err)
        assert json.loads(captured.out)


def test_every_example_the_readme_names_exists() -> None:
    named = set(re.findall(r"examples/(\w+\.py)", README))
    assert named
    assert {p.name for p in (REPO_ROOT / "examples").glob("*.py")} >= named


def test_make_run_listens_where_the_readme_says_listen_picks() -> None:
    said = re.search(r"`make run LISTEN=(\S+)`", README)
    assert said, "the README says how to pick another address"
    if shutil.which("make") is None:
        pytest.skip("make is not installed here")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    dry_run = subprocess.run(
        ["make", "-n", "run", f"LISTEN={said.group(1)}"],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    assert dry_run.stdout.splitlines()[-1].endswith(f"satchel dev --listen {said.group(1)}")
