"""The client package stands alone: it never imports the server, and it ships its types."""

from __future__ import annotations

import subprocess
import sys

from support.processes import REPO_ROOT

import satchel

CHECK = """
import sys
import satchel, satchel.cli, satchel.client, satchel.errors, satchel.results
server = ("satchel_server", "satchel_server.", "aiohttp")
loaded = sorted(m for m in sys.modules if m == server[0] or m.startswith(server[1:]))
print(",".join(loaded))
"""


def test_importing_the_client_loads_neither_the_server_nor_aiohttp() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    assert done.stdout.strip() == ""


def test_the_package_is_typed_and_exports_what_it_documents() -> None:
    assert (REPO_ROOT / "clients" / "python" / "satchel" / "py.typed").exists()
    star: dict[str, object] = {}
    exec("from satchel import *", star)
    assert sorted(set(star) - {"__builtins__"}) == sorted(satchel.__all__)
    for name in satchel.__all__:
        value = getattr(satchel, name)
        defined_in = getattr(value, "__module__", None) or type(value).__module__
        assert defined_in in {"satchel.client", "satchel.errors", "satchel.results"}, name
        assert (value.__doc__ or "").strip(), f"satchel.{name} has no docstring"
    errors = [getattr(satchel, name) for name in satchel.__all__ if name.endswith("Error")]
    assert errors
    assert all(issubclass(error, satchel.SatchelError) for error in errors)
