"""The Deployment's probes reach the pod: a server started with the container's config
answers health on the probe's port at the pod's address, not only on loopback.

The kubelet connects to the pod IP, never the container's loopback, so an answer on
127.0.0.1 alone would prove nothing. The server runs in a network namespace made for
the test (support.pod_network) whose veth interface plays the pod IP: the probe's fixed
port is free there, and no packet leaves the namespace.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from support.pod_network import POD_ADDRESS, run_in_pod_network, why_no_pod_network

REPO = Path(__file__).resolve().parents[2]
CONTAINER_TOML = REPO / "deploy/satchel.container.toml"


def probe_ports() -> set[int]:
    deployment = yaml.safe_load((REPO / "deploy/kubernetes/deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {
        container[probe]["grpc"]["port"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
    }


def test_the_container_config_serves_health_on_the_probes_port() -> None:
    (port,) = probe_ports()
    health_listen = tomllib.loads(CONTAINER_TOML.read_text())["server"]["health_listen"]
    assert health_listen.endswith(f":{port}")


def test_probe_port_answers_serving_at_the_pod_address(tmp_path: Path) -> None:
    reason = why_no_pod_network()
    if reason is not None:
        pytest.skip(reason)
    (port,) = probe_ports()
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    argv = [sys.executable, "-m", "support.probe_in_pod", POD_ADDRESS, str(port)]
    finished = run_in_pod_network(
        [*argv, str(CONTAINER_TOML), str(tmp_path / "data")], env=env, timeout=120
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.strip().splitlines()[-1] == "SERVING"


def test_a_loopback_health_listener_is_not_reachable_at_the_pod_address(tmp_path: Path) -> None:
    """The check above can fail: the shipped config before it bound 127.0.0.1."""
    reason = why_no_pod_network()
    if reason is not None:
        pytest.skip(reason)
    (port,) = probe_ports()
    loopback_only = tmp_path / "container.toml"
    text = CONTAINER_TOML.read_text()
    document = tomllib.loads(text)
    shipped = document["server"]["health_listen"]
    loopback_only.write_text(text.replace(shipped, f"127.0.0.1:{port}"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    argv = [sys.executable, "-m", "support.probe_in_pod", POD_ADDRESS, str(port)]
    finished = run_in_pod_network(
        [*argv, str(loopback_only), str(tmp_path / "data")], env=env, timeout=120
    )
    assert finished.returncode != 0
    assert "UNAVAILABLE" in finished.stderr
