# SPDX-License-Identifier: Apache-2.0
"""Lifecycle of a real server, launched as a user would: signals, exit status, no orphans,
worker death, and starting from outside the checkout without the venv on PATH."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from quote.mods.registry import ModRegistry, normalise_source
from quote.server.process import free_port

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent
CLEAN_PATH = "/usr/bin:/bin"  # no venv: the launch must not depend on PATH

PRELOADED = """
from quote.sdk import Prefilled, mod, tokenize

@mod
def hello(event, actions, tokenizer):
    if isinstance(event, Prefilled):
        return actions.force_tokens(tokenize("HELLO ", tokenizer))
"""
REGISTERED = """
from quote.sdk import Prefilled, mod, tokenize

@mod
def fixed(event, actions, tokenizer):
    if isinstance(event, Prefilled):
        return actions.force_output(tokenize("done.", tokenizer))
"""


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Launched:
    """A server command started in its own session from ``cwd``; remembers its tree."""

    def __init__(self, cmd: list[str], env: dict[str, str], cwd: Path, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.log = cwd / f"server-{port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.seen: dict[int, psutil.Process] = {self.proc.pid: psutil.Process(self.proc.pid)}

    def tree(self) -> list[psutil.Process]:
        """The live tree now (also remembered for the final clean-up)."""
        try:
            kids = self.seen[self.proc.pid].children(recursive=True)
        except psutil.Error:
            kids = []
        self.seen.update({k.pid: k for k in kids})
        return [self.seen[self.proc.pid], *kids]

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_ready(self, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.tail()}"
            self.tree()
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"not ready in {timeout:.0f} s:\n{self.tail()}")

    def kill_all(self) -> None:
        """Test clean-up: SIGKILL whatever is left (a passing test leaves nothing)."""
        self.tree()
        for p in self.seen.values():
            if _alive(p):
                p.kill()
        self.proc.wait(10)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Any]:
    started: list[Launched] = []

    def start(cmd: list[str], env: dict[str, str], cwd: Path) -> Launched:
        srv = Launched(cmd, env, cwd, int(cmd[cmd.index("--port") + 1]))
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.kill_all()


@pytest.fixture
def outside(tmp_path: Path) -> dict[str, Any]:
    """A run directory outside the checkout, a mod package dir, a mods dir with one mod."""
    run, pkgs, mods = tmp_path / "run", tmp_path / "pkgs", tmp_path / "mods"
    for d in (run, pkgs, mods):
        d.mkdir()
    (pkgs / "lifecycle_mods.py").write_text(PRELOADED)
    files, entry = normalise_source(REGISTERED, "fixed")
    ModRegistry(mods).write("fixed", files, entry, "registered before the start")
    env = {
        "HOME": os.environ["HOME"],
        "PATH": CLEAN_PATH,
        "PYTHONPATH": str(pkgs),
        "MAX_SERVE_DISABLE_TELEMETRY": "1",
    }
    assert not str(run).startswith(str(Path(__file__).parents[2]))
    return {"run": run, "mods": mods, "env": env}


def _chat(base: str, model: str, **kw: Any) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    body.update(temperature=0, **kw)
    r = httpx.post(base + "/v1/chat/completions", json=body, timeout=120)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _check_mods(srv: Launched) -> None:
    served = httpx.get(srv.base + "/v1/models", timeout=30).json()["data"][0]["id"]
    text = _chat(srv.base, f"{served}/hello")["choices"][0]["message"]["content"]
    assert text.startswith("HELLO "), text
    assert _chat(srv.base, f"{served}/fixed")["choices"][0]["message"]["content"] == "done."


class _Stream(threading.Thread):
    """A long streaming chat request; ``first`` is set when the first token arrives."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base, self.first, self.chunks, self.done = base, threading.Event(), 0, False

    def run(self) -> None:
        served = httpx.get(self.base + "/v1/models", timeout=30).json()["data"][0]["id"]
        body = {
            "model": served,
            "messages": [{"role": "user", "content": "tell me a long story"}],
            "max_tokens": 1800,
            "ignore_eos": True,
            "stream": True,
        }
        try:
            with httpx.stream(
                "POST", self.base + "/v1/chat/completions", json=body, timeout=60
            ) as r:
                for line in r.iter_lines():
                    if line.startswith("data: {") and json.loads(line[6:]).get("choices"):
                        self.chunks += 1
                        self.first.set()
                    elif line == "data: [DONE]":
                        self.done = True
        except httpx.HTTPError:
            pass  # the server went away mid-stream: expected here


def _stop_mid_stream(srv: Launched, sig: signal.Signals) -> tuple[float, list[int]]:
    """Signal ``quote serve`` during a stream; (seconds to exit, pids of the tree still alive)."""
    stream = _Stream(srv.base)
    stream.start()
    assert stream.first.wait(120), srv.tail()
    tree = srv.tree()
    assert len(tree) >= 4, [p.cmdline() for p in tree]  # quote, max serve, its helpers
    assert not stream.done, "the stream ended before the signal: not a mid-stream stop"
    t0 = time.monotonic()
    os.kill(srv.proc.pid, sig)
    rc = srv.proc.wait(30)
    elapsed = time.monotonic() - t0
    assert rc == 0, f"exit status {rc} after {sig.name}:\n{srv.tail()}"
    stream.join(30)
    assert not stream.is_alive()
    return elapsed, [p.pid for p in tree if _alive(p)]


@pytest.mark.parametrize(
    ("how", "sig"),
    [("venv-script", signal.SIGTERM), ("python-m", signal.SIGINT)],
    ids=["bin-quote-SIGTERM", "python-m-quote-SIGINT"],
)
def test_quote_serve_from_outside_serves_mods_and_stops_cleanly(
    how: str,
    sig: signal.Signals,
    tiny_model: Path,
    outside: dict[str, Any],
    launch: Any,
    record_property: Any,
) -> None:
    head = [str(VENV_BIN / "quote")] if how == "venv-script" else [sys.executable, "-m", "quote"]
    cmd = head + ["serve", "--model", str(tiny_model), "--port", str(free_port())]
    cmd += ["--mods-dir", str(outside["mods"]), "--mod", "lifecycle_mods:hello"]
    srv = launch(cmd, outside["env"], outside["run"])
    srv.wait_ready()
    _check_mods(srv)
    elapsed, left = _stop_mid_stream(srv, sig)
    record_property(f"{sig.name}_exit_s", round(elapsed, 2))
    print(f"\n{how}: {sig.name} -> exit 0 in {elapsed:.2f} s, processes left: {left}")
    assert elapsed < 10, f"{sig.name} took {elapsed:.1f} s"
    assert left == [], f"processes left after {sig.name}: {left}"


def test_plain_max_serve_from_outside_serves_mods(
    tiny_model: Path, outside: dict[str, Any], launch: Any
) -> None:
    port = str(free_port())
    cmd = [str(VENV_BIN / "max"), "serve", "--custom-architectures", "quote.custom_arch"]
    cmd += ["--model-path", str(tiny_model), "--devices", "cpu", "--port", port]
    cmd += ["--host", "127.0.0.1", "--max-length", "2048"]
    env = outside["env"] | {
        "QUOTE_PRELOAD_MODS": "lifecycle_mods:hello",
        "QUOTE_MODS_DIR": str(outside["mods"]),
    }
    srv = launch(cmd, env, outside["run"])
    srv.wait_ready()
    _check_mods(srv)


def test_worker_death_makes_quote_serve_exit_nonzero(
    tiny_model: Path, outside: dict[str, Any], launch: Any, record_property: Any
) -> None:
    cmd = [str(VENV_BIN / "quote"), "serve", "--model", str(tiny_model), "--port", str(free_port())]
    srv = launch(cmd + ["--mods-dir", str(outside["mods"])], outside["env"], outside["run"])
    srv.wait_ready()
    tree = srv.tree()
    workers = [
        p
        for p in tree
        if "spawn_main" in " ".join(p.cmdline()) and p.memory_info().rss > 200 * 2**20
    ]
    assert len(workers) == 1, [(p.cmdline(), p.memory_info().rss) for p in tree]
    t0 = time.monotonic()
    os.kill(workers[0].pid, signal.SIGKILL)
    rc = srv.proc.wait(30)
    elapsed = time.monotonic() - t0
    record_property("worker_death_exit_s", round(elapsed, 2))
    print(f"\nworker SIGKILLed -> quote serve exit {rc} in {elapsed:.2f} s")
    assert rc != 0, srv.tail()
    assert elapsed < 5, f"quote serve took {elapsed:.1f} s to exit after the worker died"
    assert [p.pid for p in tree if _alive(p)] == []
