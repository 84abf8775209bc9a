"""A pod's network for one command: a fresh network namespace with a veth interface.

The kubelet probes the pod IP, never the container's loopback. To prove a probe port is
reachable that way without sending a packet to any address outside this test, the
command runs in a network namespace made here (`unshare`, as a user namespace when not
root), where `pod0` carries POD_ADDRESS and nothing else but loopback exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

# TEST-NET-2 (RFC 5737): documentation space, never routed, and here only inside the
# namespace this module makes.
POD_ADDRESS = "198.51.100.7"

_SETUP = (
    "ip link set lo up"
    " && ip link add pod0 type veth peer name pod1"
    f" && ip addr add {POD_ADDRESS}/24 dev pod0"
    " && ip link set pod0 up && ip link set pod1 up"
    ' && exec "$@"'
)


def _unshare_argv() -> list[str]:
    return ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--net"]


def why_no_pod_network() -> str | None:
    """None when a namespace with a veth can be made here, else the reason it cannot."""
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH"
    trial = subprocess.run(
        [*_unshare_argv(), "sh", "-c", _SETUP, "sh", "true"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if trial.returncode != 0:
        return f"cannot make a network namespace with a veth here: {trial.stderr.strip()}"
    return None


def run_in_pod_network(
    argv: Sequence[str], *, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_unshare_argv(), "sh", "-c", _SETUP, "sh", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
