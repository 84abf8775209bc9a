"""What can be checked here of the packaging: stubs vs protos, the API contract, the Dockerfile.

No Docker engine runs on these machines, so the Dockerfile is checked as text:
it must install the same package the Makefile installs, and its CMD and
HEALTHCHECK must name entry points that exist.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from support.processes import REPO_ROOT

from satchel.v1 import token_service_pb2 as pb
from satchel_server.cli import _parser

GENERATED_DIR = REPO_ROOT / "clients" / "python" / "satchel" / "v1"
# Continuation lines joined, so each instruction is one line.
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
CLIENT_PYPROJECT = tomllib.loads((REPO_ROOT / "clients" / "python" / "pyproject.toml").read_text())
REQUIREMENT = re.compile(r"([A-Za-z0-9_.-]+)\s*(.*)")


def _requirements(pyproject: dict[str, Any], extra: str | None = None) -> dict[str, str]:
    """{name: version bounds} of a pyproject's dependencies (or of one extra)."""
    project = pyproject["project"]
    listed = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return dict(map(_requirement, listed))


def _requirement(text: str) -> tuple[str, str]:
    match = REQUIREMENT.fullmatch(text)
    assert match, f"not a requirement: {text!r}"
    return match[1].lower(), match[2]


def _generated(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("*_pb2*.py*"))}


def test_committed_stubs_match_protos(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "gen_protos.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = _generated(tmp_path / "satchel" / "v1")
    committed = _generated(GENERATED_DIR)
    assert sorted(fresh) == sorted(committed), "run `make proto` and commit the result"
    drifted = [name for name in fresh if fresh[name] != committed[name]]
    assert not drifted, f"stubs drifted from protos/: {drifted}; run `make proto`"


# The contract from the foundation issue: clients rely on these names and numbers.
CONTRACT = {
    "Credentials": {
        "access_key_id": 1,
        "access_key_secret": 2,
        "security_token": 3,
        "expiration": 4,
    },
    "StorageLocation": {"bucket": 1, "region": 2, "endpoint": 3, "prefix": 4},
    "IssueTokenRequest": {"player_id": 1, "scope": 2, "permissions": 3, "ttl": 4},
    "IssueTokenResponse": {"credentials": 1, "location": 2, "permissions": 3},
    "PresignObjectRequest": {
        "player_id": 1,
        "scope": 2,
        "key": 3,
        "method": 4,
        "expires_in": 5,
        "content_type": 6,
        "max_size": 7,
        "forbid_overwrite": 8,
    },
    "PresignObjectResponse": {
        "url": 1,
        "method": 2,
        "headers": 3,
        "form_fields": 4,
        "expiration": 5,
        "key": 6,
        "location": 7,
    },
    "PresignItem": {
        "key": 1,
        "method": 2,
        "expires_in": 3,
        "content_type": 4,
        "max_size": 5,
        "forbid_overwrite": 6,
        "content_length": 7,
    },
    "PresignObjectsRequest": {"player_id": 1, "scope": 2, "items": 3},
    "PresignResult": {"presigned": 1, "error": 2},
    "PresignObjectsResponse": {"results": 1},
}


@pytest.mark.parametrize("message", sorted(CONTRACT))
def test_message_fields_keep_their_names_and_numbers(message: str) -> None:
    fields = pb.DESCRIPTOR.message_types_by_name[message].fields_by_name
    assert {name: fields[name].number for name in CONTRACT[message]} == CONTRACT[message]


def test_enums_and_service_keep_their_names_and_numbers() -> None:
    assert dict(pb.Permission.items()) == {
        "PERMISSION_UNSPECIFIED": 0,
        "PERMISSION_READ": 1,
        "PERMISSION_WRITE": 2,
        "PERMISSION_LIST": 3,
        "PERMISSION_DELETE": 4,
    }
    assert dict(pb.HttpMethod.items()) == {
        "HTTP_METHOD_UNSPECIFIED": 0,
        "HTTP_METHOD_GET": 1,
        "HTTP_METHOD_PUT": 2,
        "HTTP_METHOD_HEAD": 3,
        "HTTP_METHOD_DELETE": 4,
        "HTTP_METHOD_POST": 5,
    }
    service = pb.DESCRIPTOR.services_by_name["TokenService"]
    assert service.full_name == "satchel.v1.TokenService"
    assert [m.name for m in service.methods] == ["IssueToken", "PresignObject", "PresignObjects"]


def test_the_client_needs_grpc_and_protobuf_only() -> None:
    assert set(_requirements(CLIENT_PYPROJECT)) == {"grpcio", "grpcio-status", "protobuf"}
    assert CLIENT_PYPROJECT["project"]["name"] == "satchel"
    assert "scripts" not in CLIENT_PYPROJECT["project"], "`satchel` is the server's command"


def test_the_server_depends_on_the_client_of_the_same_release() -> None:
    assert PYPROJECT["project"]["name"] == "satchel-server"
    assert _requirements(PYPROJECT)["satchel"] == f"=={CLIENT_PYPROJECT['project']['version']}"
    assert PYPROJECT["project"]["version"] == CLIENT_PYPROJECT["project"]["version"]


def test_shared_dependencies_have_the_same_bounds_and_fit_the_stub_generator() -> None:
    server, client = _requirements(PYPROJECT), _requirements(CLIENT_PYPROJECT)
    for name, bounds in client.items():
        assert server[name] == bounds, f"{name}: the server and the client disagree"
    # The generated _pb2_grpc refuses a grpcio older than the grpcio-tools that made it.
    tools = _requirements(PYPROJECT, "test")["grpcio-tools"].removeprefix("==")
    assert client["grpcio"].startswith(f">={tools},")


def test_dockerfile_requirements_are_both_lists_without_the_local_client(tmp_path: Path) -> None:
    """The Dockerfile's first pip step reads the pyprojects: run its command on them."""
    (command,) = re.findall(r'^RUN (python -c ".*?") > /tmp/requirements\.txt', DOCKERFILE, re.M)
    for name in ("pyproject.toml", "clients/python/pyproject.toml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    done = subprocess.run(
        ["sh", "-c", command.replace("python", shlex.quote(sys.executable), 1)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    expected = {**_requirements(PYPROJECT), **_requirements(CLIENT_PYPROJECT)}
    del expected["satchel"]  # from this tree, never from an index
    assert dict(map(_requirement, done.stdout.split())) == expected


def _exec_form(instruction: str) -> list[str]:
    """The JSON argument list of CMD, or of the CMD inside HEALTHCHECK."""
    match = re.search(rf"^{instruction}\b.*?(\[.*\])$", DOCKERFILE, re.MULTILINE)
    assert match, f"Dockerfile has no exec-form {instruction}"
    return list(json.loads(match.group(1)))


def test_dockerfile_cmd_and_healthcheck_name_real_entry_points() -> None:
    assert PYPROJECT["project"]["scripts"]["satchel"] == "satchel_server.cli:main"
    cmd = _exec_form("CMD")
    health = _exec_form("HEALTHCHECK")
    assert cmd == ["satchel", "serve"]
    assert health[:2] == ["satchel", "health"]
    parser = _parser()
    assert parser.parse_args(cmd[1:]).command == "serve"
    assert parser.parse_args(health[1:]).command == "health"


def test_dockerfile_installs_this_package_as_non_root_on_slim_python() -> None:
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.MULTILINE)) >= 2, "multi-stage build"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+\.\d+-slim", DOCKERFILE, re.MULTILINE)
    assert re.search(r"pip install .*\.$", DOCKERFILE, re.MULTILINE), "installs the project"
    for source in re.findall(r"^COPY (?!--from)(.+?) \S+$", DOCKERFILE, re.MULTILINE):
        for path in source.split():
            assert (REPO_ROOT / path).exists(), f"Dockerfile copies missing {path}"
    user = re.findall(r"^USER (\S+)$", DOCKERFILE, re.MULTILINE)
    assert user, "the image names a USER"
    assert user[-1] not in ("root", "0")
    assert re.search(r"^EXPOSE 50051\b", DOCKERFILE, re.MULTILINE)
    assert re.search(r"^STOPSIGNAL SIGTERM$", DOCKERFILE, re.MULTILINE)


def test_dockerfile_installs_dependencies_in_their_own_layer_before_the_sources() -> None:
    build_stage = DOCKERFILE.split("\nFROM ")[1]
    deps = build_stage.index("-r /tmp/requirements.txt")
    sources = build_stage.index("COPY service ")
    assert deps < sources, "dependencies must be installed before the sources are copied"
    assert "['project']['dependencies']" in build_stage, "the list comes from pyproject.toml"
    assert "--no-deps ./clients/python .\n" in build_stage[sources:], "the client and the server"


def test_dockerfile_base_image_is_pinned_to_an_exact_version() -> None:
    (image,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", image)
