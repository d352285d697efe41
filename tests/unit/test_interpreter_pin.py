# SPDX-License-Identifier: Apache-2.0
"""The launch-failure root cause, reproduced without MAX: a ``PYTHONEXECUTABLE`` written into
the C environment after start-up (as MAX's Mojo runtime does) sends spawned children to
another interpreter's ``sys.prefix``; :func:`quote.server.interpreter.pin_interpreter` fixes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SCRIPT = """
import ctypes, multiprocessing, sys
def child(q):
    import importlib.util
    q.put((sys.prefix, importlib.util.find_spec("quote") is not None))
if __name__ == "__main__":
    ctypes.CDLL(None).setenv(b"PYTHONEXECUTABLE", b"/nonexistent/bin/python3", 1)  # as Mojo does
    if sys.argv[1] == "pin":
        from quote.server.interpreter import pin_interpreter
        pin_interpreter()
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=child, args=(q,))
    p.start()
    print(repr(q.get(timeout=60)), sys.prefix)
    p.join()
"""


def _run(tmp_path: Path, mode: str) -> str:
    script = tmp_path / "spawn_child.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONEXEC", "MOJO_PYTHON"))}
    out = subprocess.run(
        [sys.executable, str(script), mode],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return out.stdout + out.stderr


def test_pythonexecutable_in_c_environment_breaks_spawned_children(tmp_path: Path) -> None:
    out = _run(tmp_path, "nopin")
    assert ", False)" in out and f"('{sys.prefix}', True)" not in out, out  # no 'quote' there


def test_pin_interpreter_keeps_spawned_children_in_this_environment(tmp_path: Path) -> None:
    out = _run(tmp_path, "pin")
    assert f"('{sys.prefix}', True) {sys.prefix}" in out, out


def test_pin_keeps_values_set_before_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from quote.server.interpreter import interpreter_env, pin_interpreter

    environ = {"MOJO_PYTHON": "/custom/python"}  # a plain dict: nothing reaches the C env
    monkeypatch.setattr(os, "environ", environ)
    changed = pin_interpreter()
    assert environ["MOJO_PYTHON"] == "/custom/python" and "MOJO_PYTHON" not in changed
    assert environ["PYTHONEXECUTABLE"] == sys.executable == interpreter_env()["PYTHONEXECUTABLE"]
    assert changed["PYTHONEXECUTABLE"] == sys.executable
