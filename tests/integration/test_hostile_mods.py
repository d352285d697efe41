# SPDX-License-Identifier: Apache-2.0
"""No mod can take the server down: hostile mods against a real `quote serve` (tiny model, CPU).

Every kind of exit (raise, SystemExit, KeyboardInterrupt, sys.exit, os._exit) at import, in
``on_start`` and in a handler, plus a loop and blocking I/O in a handler. Import-time ones are
refused at registration (400); run-time ones fail only their own request (4xx naming the mod)
while a concurrent healthy request in the same batch completes exactly as alone. ``os._exit``
at run time kills the model worker: then ``/health`` must fail at once, in-flight requests get
an error and ``quote serve`` exits non-zero within 5 s (each case in its own server).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from quote.server.process import ServerProcess, register_mod

pytestmark = pytest.mark.integration

KEY = "hostile-key"
ENV = {"QUOTE_ADMIN_KEY": KEY, "QUOTE_MOD_TIMEOUT_MS": "500", "QUOTE_MOD_CHECK_TIMEOUT_S": "5"}
EXITS = {
    "raise": ("raise ValueError('hostile raise')", "ValueError"),
    "SystemExit": ("raise SystemExit(0)", "SystemExit"),
    "KeyboardInterrupt": ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    "sys.exit": ("import sys; sys.exit(0)", "SystemExit"),
    "os._exit": ("import os; os._exit(0)", "ended the check process"),
    "hang": ("import time; time.sleep(3600)", "took longer than 5 s"),
    "loop": ("while True: pass", "time budget"),
    "block": ("import socket; x, y = socket.socketpair(); x.recv(1)", "time budget"),
}
NOOP = "from quote.sdk import mod\n@mod\ndef m(e, a, t):\n    return None\n"
HEALTHY = {"messages": [{"role": "user", "content": "tell me a story"}], "max_tokens": 24}
REPORT: list[tuple[str, str, str, float]] = []
HEALTH_DOWN_S = 1.0  # "at once" (measured 0.1-0.2 s on CPU)
EXIT_S = 5.0  # quote serve's exit after the worker died (measured 3.8-4.2 s on CPU)


def _name(kind: str, where: str) -> str:
    return f"{where}-{kind.lower().replace('.', '-').replace('_', '')}"


def _source(kind: str, where: str) -> tuple[str, str]:
    """(source, entrypoint) of a mod doing ``kind`` at ``where``."""
    stmt = EXITS[kind][0]
    if where == "import":
        return f"{NOOP}{stmt}\n", "m"
    if where == "on_start":
        body = f"    def on_start(self, request):\n        {stmt}\n"
        handle = "    def handle(self, e, a, t):\n        return None\n"
        return f"from quote.sdk import Mod\nclass M(Mod):\n{body}{handle}", "M"
    trigger = "    if isinstance(e, ForwardPass) and e.step == 1:\n"
    head = "from quote.sdk import ForwardPass, mod\n@mod\ndef m(e, a, t):\n"
    return f"{head}{trigger}        {stmt}\n", "m"


def _start(model: Path, d: Path) -> ServerProcess:
    srv = ServerProcess(model, mods_dir=d / "mods", log=d / "server.log", max_batch_size=4, env=ENV)
    srv.wait_ready()
    status, text = register_mod(srv.base, KEY, "noop", NOOP, "m")
    assert status == 201, text
    return srv


def _body(srv: ServerProcess, mod: str, **kw: Any) -> dict[str, Any]:
    served = httpx.get(srv.base + "/v1/models", timeout=30).json()["data"][0]["id"]
    return {"model": f"{served}/{mod}", "temperature": 0, **HEALTHY, **kw}


async def _post(c: httpx.AsyncClient, body: dict[str, Any], delay: float = 0.0) -> Any:
    await asyncio.sleep(delay)
    t0 = time.perf_counter()
    r = await c.post("/v1/chat/completions", json=body)
    return r.status_code, r.text, time.perf_counter() - t0


@pytest.fixture(scope="class")
def srv(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The server of :class:`TestOneServer` (started once for the class)."""
    server = _start(tiny_model, tmp_path_factory.mktemp("hostile"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="class")
def reference(srv: ServerProcess) -> str:
    """The healthy request's text when it runs alone."""
    r = httpx.post(srv.base + "/v1/chat/completions", json=_body(srv, "noop"), timeout=120)
    assert r.status_code == 200, r.text
    return str(r.json()["choices"][0]["message"]["content"])


class TestOneServer:
    """Every case the server survives, on one server (4-request batches)."""

    @pytest.mark.parametrize("kind", list(EXITS)[:6])
    def test_import_time_exit_is_refused(self, srv: ServerProcess, kind: str) -> None:
        name = _name(kind, "import")
        source, entry = _source(kind, "import")
        t0 = time.perf_counter()
        status, text = register_mod(srv.base, KEY, name, source, entry)
        elapsed = time.perf_counter() - t0
        assert status == 400, text
        message = json.loads(text)["error"]["message"]
        assert f"mod '{name}' rejected" in message and EXITS[kind][1] in message, message
        assert httpx.get(f"{srv.base}/v1/mods/{name}", timeout=30).status_code == 404
        assert srv.healthy() and srv.proc.poll() is None
        REPORT.append((kind, "import", f"400: {message.split('rejected: ', 1)[1][:70]}", elapsed))

    @pytest.mark.parametrize(
        ("kind", "where"),
        [(k, w) for w in ("on_start", "handler") for k in list(EXITS)[:4]]
        + [("loop", "handler"), ("block", "handler")],
    )
    def test_runtime_exit_fails_only_its_request(
        self, srv: ServerProcess, reference: str, kind: str, where: str
    ) -> None:
        name = _name(kind, where)
        status, text = register_mod(srv.base, KEY, name, *_source(kind, where))
        assert status == 201, text  # the import itself is fine

        async def pair() -> list[Any]:
            async with httpx.AsyncClient(base_url=srv.base, timeout=120) as c:
                return list(
                    await asyncio.gather(
                        _post(c, _body(srv, "noop")),
                        _post(c, _body(srv, name), delay=0.05),
                        _post(c, _body(srv, "noop"), delay=0.1),
                    )
                )

        healthy_a, hostile, healthy_b = asyncio.run(pair())
        assert 400 <= hostile[0] < 500, hostile
        message = json.loads(hostile[1])["error"]["message"]
        assert f"mod '{name}'" in message and EXITS[kind][1] in message, message
        for h in (healthy_a, healthy_b):
            assert h[0] == 200, h
            assert json.loads(h[1])["choices"][0]["message"]["content"] == reference
        assert srv.healthy() and srv.proc.poll() is None
        outcome = f"{hostile[0]}: {message[:70]}; 2 healthy: 200, exact"
        REPORT.append((kind, where, outcome, hostile[2]))


@pytest.mark.parametrize("where", ["on_start", "handler"])
def test_os_exit_at_runtime_ends_the_server_fast(
    tiny_model: Path, tmp_path: Path, where: str
) -> None:
    srv = _start(tiny_model, tmp_path)
    name = _name("os._exit", where)
    try:
        status, text = register_mod(srv.base, KEY, name, *_source("os._exit", where))
        assert status == 201, text  # os._exit only at run time: the import check passes
        outcome = asyncio.run(_kill_worker(srv, name))
    finally:
        srv.stop()
    health_s, inflight, exit_s, rc = outcome
    detail = f"{outcome}\n{srv.log.read_text(errors='replace')[-1500:]}"
    REPORT.append(
        (
            "os._exit",
            where,
            f"worker dies: /health down after {health_s:.2f}s, in-flight got {inflight}, "
            f"quote serve exited {rc} after {exit_s:.2f}s",
            exit_s,
        )
    )
    assert health_s <= HEALTH_DOWN_S, detail
    assert inflight.startswith(("error event", "connection error", "status 5")), detail
    assert rc not in (None, 0) and exit_s <= EXIT_S, detail


async def _kill_worker(srv: ServerProcess, name: str) -> tuple[float, str, float, int | None]:
    """Stream a healthy request, send the hostile one; time /health, the stream's end, the exit."""
    async with httpx.AsyncClient(base_url=srv.base, timeout=30) as c:
        first = asyncio.Event()

        async def inflight() -> str:
            body = _body(srv, "noop", stream=True, max_tokens=1000, ignore_eos=True)
            try:
                async with c.stream("POST", "/v1/chat/completions", json=body) as r:
                    async for line in r.aiter_lines():
                        first.set()
                        if line.startswith("data: ") and '"error"' in line:
                            return "error event"
                        if line == "data: [DONE]":
                            return "completed"
                    return f"status {r.status_code}" if r.status_code != 200 else "truncated"
            except httpx.HTTPError as exc:
                return f"connection error ({type(exc).__name__})"

        task = asyncio.create_task(inflight())
        await asyncio.wait_for(first.wait(), 60)
        t0 = time.perf_counter()
        hostile = asyncio.create_task(c.post("/v1/chat/completions", json=_body(srv, name)))
        health_s = exit_s = float("inf")
        while time.perf_counter() - t0 < 15 and (
            health_s == float("inf") or srv.proc.poll() is None
        ):
            if health_s == float("inf") and not await asyncio.to_thread(srv.healthy, 1.0):
                health_s = time.perf_counter() - t0
            if exit_s == float("inf") and srv.proc.poll() is not None:
                exit_s = time.perf_counter() - t0
            await asyncio.sleep(0.05)
        if exit_s == float("inf") and srv.proc.poll() is not None:
            exit_s = time.perf_counter() - t0
        result = await asyncio.wait_for(task, 30)
        hostile.cancel()
        return health_s, result, exit_s, srv.proc.poll()


def test_report() -> None:
    """Prints the hostile-mod table collected above."""
    if not REPORT:
        pytest.skip("nothing ran")
    print("\n| kind | where | outcome | time s |\n|---|---|---|---|")
    for kind, where, outcome, seconds in REPORT:
        print(f"| {kind} | {where} | {outcome} | {seconds:.2f} |")
