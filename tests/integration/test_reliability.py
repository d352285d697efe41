# SPDX-License-Identifier: Apache-2.0
"""Load, faults and hostile input against a real `quote serve` (tiny model, CPU, loopback).

Bounded in time and count so it runs in `make test`; `benchmarks/soak.py` is the long version.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_proc import Server, register_mod

from quote.server.process import ServerProcess
from quote.server.supervise import EXIT_WORKER_DIED

pytestmark = pytest.mark.integration

KEY = "reliability-key"
AUTH = {"Authorization": f"Bearer {KEY}"}

MODS = (
    (Path(__file__).parents[2] / "benchmarks" / "mixed_mods.py").read_text()
    + """
import socket
from quote.sdk import Added, ForwardPass, Sampled, mod

@mod
def raises(e, a, t):
    if isinstance(e, Sampled) and e.step == 1:
        raise ValueError("boom")

@mod
def garbage(e, a, t):
    if isinstance(e, Added):
        return {"not": "an action"}

@mod
def forever(e, a, t):
    if isinstance(e, ForwardPass) and e.step == 1:
        while True:
            pass

@mod
def blocks(e, a, t):
    if isinstance(e, ForwardPass) and e.step == 1:
        x, y = socket.socketpair()
        x.recv(1)

@mod
def negative(e, a, t):
    if isinstance(e, Sampled):
        return a.force_tokens([-5])

@mod
def huge_id(e, a, t):
    if isinstance(e, Sampled):
        return a.force_tokens([10**9])
"""
)
NAMES = [
    "noop",
    "mask",
    "force",
    "backtrack",
    "tool",
    "fixed",
    "raises",
    "garbage",
    "forever",
    "blocks",
    "negative",
    "huge_id",
]
MIX = [None, *NAMES[:6]]  # no mod, then one mod per action: mixed_mods.MIX
REPORT: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    d = tmp_path_factory.mktemp("reliability")
    srv = ServerProcess(
        tiny_model,
        mods_dir=d / "mods",
        log=d / "server.log",
        max_batch_size=8,  # requests with and without mods share batches
        env={"QUOTE_ADMIN_KEY": KEY, "QUOTE_MOD_TIMEOUT_MS": "500"},
    )
    try:
        srv.wait_ready()
        for name in NAMES:
            register_mod(srv, KEY, name.replace("_", "-"), MODS, name)
        yield srv
    finally:
        srv.stop()


def _served(server: Server) -> str:
    return str(httpx.get(server.base + "/v1/models").json()["data"][0]["id"])


def _body(served: str, mod: str | None, i: int, stream: bool) -> dict[str, Any]:
    return {
        "model": served if mod is None else f"{served}/{mod}",
        "messages": [{"role": "user", "content": f"request number {i % 5}"}],
        "max_tokens": 12,
        "temperature": 0,
        "stream": stream,
    }


async def _call(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> tuple[int, str, str | None, float]:
    t0 = time.perf_counter()
    if not body["stream"]:
        r = await client.post("/v1/chat/completions", json=body)
        dt = time.perf_counter() - t0
        if r.status_code != 200:
            return r.status_code, r.text, None, dt
        c = r.json()["choices"][0]
        calls = c["message"].get("tool_calls")
        text = (
            json.dumps([x["function"] for x in calls]) if calls else (c["message"]["content"] or "")
        )
        return 200, text, c["finish_reason"], dt
    parts, reason, calls = [], None, []
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            return r.status_code, (await r.aread()).decode(), None, time.perf_counter() - t0
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ch = json.loads(line[6:])
            if "error" in ch:
                return 599, json.dumps(ch), None, time.perf_counter() - t0
            if ch.get("choices"):
                d = ch["choices"][0].get("delta") or {}
                parts.append(d.get("content") or "")
                calls += [x["function"] for x in d.get("tool_calls") or []]
                reason = ch["choices"][0].get("finish_reason") or reason
    text = json.dumps(calls) if calls else "".join(parts)
    return 200, text, reason, time.perf_counter() - t0


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def test_load_64_concurrent_mixed(server: Server) -> None:
    served = _served(server)
    bodies = [_body(served, MIX[i % len(MIX)], i, stream=bool(i % 2)) for i in range(64)]

    async def run_all() -> list[tuple[int, str, str | None, float]]:
        async with httpx.AsyncClient(base_url=server.base, timeout=300) as c:
            return await asyncio.gather(*(_call(c, b) for b in bodies))

    together = asyncio.run(run_all())

    async def run_alone() -> list[tuple[int, str, str | None, float]]:
        out = []
        async with httpx.AsyncClient(base_url=server.base, timeout=300) as c:
            for b in bodies[: len(MIX) * 2 * 5]:
                out.append(await _call(c, b))
        return out

    alone = asyncio.run(run_alone())
    assert all(r[0] == 200 for r in together), [r for r in together if r[0] != 200][:3]
    for b, t, a in zip(bodies, together, alone, strict=False):
        assert (t[1], t[2]) == (a[1], a[2]), (b["model"], b["stream"], t, a)
    lat = [r[3] for r in together]
    REPORT.append(
        {
            "scenario": "load: 64 concurrent, 7 mod mixes, stream+non-stream",
            "requests": 64,
            "ok": 64,
            "lost": 0,
            "5xx": 0,
            "p50_ms": _pct(lat, 50) * 1e3,
            "p99_ms": _pct(lat, 99) * 1e3,
        }
    )


@pytest.mark.parametrize("bad", ["raises", "garbage", "forever", "blocks", "negative", "huge-id"])
def test_faulty_mod_fails_only_its_request(server: Server, bad: str) -> None:
    served = _served(server)
    bodies = [_body(served, bad, 0, stream=False), _body(served, bad, 1, stream=True)]
    bodies += [
        _body(served, m, i, stream=bool(i % 2))
        for i, m in enumerate(["force", None, "mask", "noop"])
    ]

    async def run() -> list[tuple[int, str, str | None, float]]:
        async with httpx.AsyncClient(base_url=server.base, timeout=120) as c:
            return await asyncio.gather(*(_call(c, b) for b in bodies))

    t0 = time.perf_counter()
    res = asyncio.run(run())
    elapsed = time.perf_counter() - t0
    assert res[0][0] == 422 and f"'{bad}'" in res[0][1], res[0]
    assert res[1][0] == 599 and f"'{bad}'" in res[1][1], res[1]
    assert all(r[0] == 200 for r in res[2:]), res[2:]

    async def alone(body: dict[str, Any]) -> tuple[int, str, str | None, float]:
        async with httpx.AsyncClient(base_url=server.base, timeout=120) as c:
            return await _call(c, body)

    solo = [asyncio.run(alone(b))[1:3] for b in bodies[2:]]  # each healthy request alone

    def mismatches(got: list[tuple[int, str, str | None, float]]) -> list[str]:
        pairs = zip(bodies[2:], solo, got[2:], strict=True)
        return [str(b["model"]) for b, ref, r in pairs if ref != r[1:3]]

    differ = mismatches(res)
    assert differ == [], (differ, res[2:], solo)  # exact: one mismatch fails
    assert server.healthy()
    REPORT.append(
        {
            "scenario": f"mod fault '{bad}' + 4 healthy requests",
            "requests": 6,
            "ok": 6,
            "lost": 0,
            "5xx": 0,
            "p50_ms": statistics.median(r[3] for r in res) * 1e3,
            "p99_ms": max(r[3] for r in res) * 1e3,
            "note": f"faulty request failed with its mod named; batch took {elapsed:.1f}s",
        }
    )


def _stats(server: Server) -> dict[str, Any]:
    return dict(httpx.get(server.base + "/v1/quote/stats", timeout=10).json())


def test_client_disconnects_free_everything(server: Server) -> None:
    served = _served(server)
    body = _body(served, "noop", 0, stream=True) | {"max_tokens": 200}
    baseline = _stats(server)

    async def drop(c: httpx.AsyncClient) -> None:
        async with c.stream("POST", "/v1/chat/completions", json=body) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    break  # leave after the first event

    async def run() -> None:
        async with httpx.AsyncClient(base_url=server.base, timeout=120) as c:
            for _batch in range(10):
                await asyncio.gather(*(drop(c) for _ in range(20)))

    asyncio.run(run())
    deadline = time.monotonic() + 60
    while True:
        s = _stats(server)
        if s["live_requests"] == 0 and s.get("kv_blocks_used") == baseline.get("kv_blocks_used"):
            break
        assert time.monotonic() < deadline, (s, baseline)
        time.sleep(0.5)
    assert s["pending_options"] == 0 and s["unread_results"] == 0
    assert server.healthy()
    REPORT.append(
        {
            "scenario": "200 streaming clients disconnect after the first event",
            "requests": 200,
            "ok": 200,
            "lost": 0,
            "5xx": 0,
            "p50_ms": float("nan"),
            "p99_ms": float("nan"),
            "note": f"live requests 0, KV blocks back to {s.get('kv_blocks_used')}",
        }
    )


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
MUTATIONS = {
    "model": st.sampled_from(
        ["<served>", "<served>/noop", "<served>/force+mask", "<served>/nope", "", "x/y/z"]
    )
    | st.text(max_size=10),
    "messages": st.lists(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["user", "system", "assistant", "tool", "bad"]),
                "content": st.text(max_size=30) | JSON_VALUES,
            }
        ),
        max_size=3,
    )
    | JSON_VALUES,
    "prompt": st.text(max_size=30) | st.lists(st.integers(-5, 2000), max_size=5) | JSON_VALUES,
    "max_tokens": st.integers(-10, 10**12) | JSON_VALUES,
    "temperature": st.floats(-5, 5) | JSON_VALUES,
    "top_p": st.floats(-1, 2) | JSON_VALUES,
    "seed": st.integers(-(2**70), 2**70),
    "stop": st.text(max_size=5) | st.lists(st.text(max_size=5), max_size=5),
    "stream": st.booleans() | JSON_VALUES,
    "quote": st.fixed_dictionaries({}, optional={"args": JSON_VALUES, "trace": st.booleans()})
    | JSON_VALUES,
    "chat_template_kwargs": JSON_VALUES,
    "logit_bias": JSON_VALUES,
    "name": st.text(max_size=70),
    "source": st.text(max_size=40)
    | st.dictionaries(st.text(max_size=12), st.text(max_size=20), max_size=3),
    "entrypoint": st.text(max_size=20),
    "bogus": JSON_VALUES,
}
BASES = {
    "/v1/chat/completions": {
        "model": "<served>/noop",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 4,
    },
    "/v1/completions": {"model": "<served>/noop", "prompt": "hi", "max_tokens": 4},
    "/v1/mods": {"name": "fuzzed", "source": "x = 1", "entrypoint": "x"},
}


@st.composite
def fuzz_request(draw: Any) -> tuple[str, dict[str, Any]]:
    path = draw(st.sampled_from(sorted(BASES)))
    body = json.loads(json.dumps(BASES[path]))
    for key in draw(st.lists(st.sampled_from(sorted(MUTATIONS)), max_size=2, unique=True)):
        if draw(st.booleans()) and key in body:
            del body[key]
        else:
            body[key] = draw(MUTATIONS[key])
    return path, body


FUZZ_COUNT = {"n": 0, "codes": {}}


@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(req=fuzz_request(), raw=st.none() | st.none() | st.none() | st.binary(max_size=64))
def _fuzz_one(
    server: Server, served: str, req: tuple[str, dict[str, Any]], raw: bytes | None
) -> None:
    path, body = req
    if "model" in body and isinstance(body["model"], str):
        body["model"] = body["model"].replace("<served>", served)
    if isinstance(body.get("max_tokens"), int) and 0 < body["max_tokens"] < 10**6:
        body["max_tokens"] = min(body["max_tokens"], 8)
    content = raw if raw is not None else json.dumps(body).encode()
    headers = {"content-type": "application/json", **(AUTH if path == "/v1/mods" else {})}
    r = httpx.post(server.base + path, content=content, headers=headers, timeout=120)
    FUZZ_COUNT["n"] += 1
    FUZZ_COUNT["codes"][r.status_code] = FUZZ_COUNT["codes"].get(r.status_code, 0) + 1
    assert r.status_code < 500, (path, content[:300], r.status_code, r.text[:300])


def test_fuzz_http_api(server: Server) -> None:
    _fuzz_one(server, _served(server))
    assert server.healthy()
    REPORT.append(
        {
            "scenario": f"fuzz: {FUZZ_COUNT['n']} random bodies on 3 routes",
            "requests": FUZZ_COUNT["n"],
            "ok": FUZZ_COUNT["n"],
            "lost": 0,
            "5xx": 0,
            "p50_ms": float("nan"),
            "p99_ms": float("nan"),
            "note": f"status codes {dict(sorted(FUZZ_COUNT['codes'].items()))}",
        }
    )


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "JSON"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "\xff\xfe"}]}', ""),
        (
            json.dumps(
                {"model": "m", "messages": [{"role": "user", "content": "x" * (17 * 1024 * 1024)}]}
            ).encode(),
            "exceeds",
        ),
    ],
    ids=["deep-json", "invalid-utf8", "oversized"],
)
def test_hostile_bodies_are_4xx(server: Server, content: bytes, needle: str) -> None:
    r = httpx.post(
        server.base + "/v1/chat/completions",
        content=content,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert needle in r.text
    assert server.healthy()


def test_huge_max_tokens_and_bad_model_are_4xx(server: Server) -> None:
    served = _served(server)
    for body in (
        _body(served, None, 0, False) | {"max_tokens": 10**12},
        _body("nope", None, 0, False),
        _body(served, "no-such", 0, False),
    ):
        r = httpx.post(server.base + "/v1/chat/completions", json=body, timeout=60)
        assert 400 <= r.status_code < 500 and r.json().get("error"), r.text


def test_image_on_a_text_only_checkpoint_is_400(server: Server) -> None:
    """``Gemma3ForCausalLM`` has no vision tower: an image is refused, never dropped silently."""
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + png}}
    body = _body(_served(server), None, 0, False)
    body["messages"] = [{"role": "user", "content": [{"type": "text", "text": "what?"}, image]}]
    r = httpx.post(server.base + "/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 400, r.text
    assert "image_url content type not supported" in r.json()["error"]["message"]
    assert server.healthy()


def test_worker_death_gives_errors_and_nonzero_exit(tiny_model: Path, tmp_path: Path) -> None:
    srv = Server(tiny_model, tmp_path / "mods", tmp_path / "die.log")
    srv.wait_ready()
    served = _served(srv)
    try:
        kids = psutil.Process(srv.proc.pid).children(recursive=True)
        workers = [
            p
            for p in kids
            if "spawn_main" in " ".join(p.cmdline()) and p.memory_info().rss > 200 * 2**20
        ]
        assert workers, [p.cmdline() for p in kids]
        body = _body(served, None, 0, True) | {"max_tokens": 1500, "ignore_eos": True}

        async def inflight() -> tuple[list[str], float, bool]:
            events: list[str] = []
            killed = 0.0
            async with httpx.AsyncClient(base_url=srv.base, timeout=60) as c:
                async with c.stream("POST", "/v1/chat/completions", json=body) as r:
                    assert r.status_code == 200
                    async for line in r.aiter_lines():
                        if not line.startswith("data: "):
                            continue
                        events.append(line[6:])
                        if len(events) == 3:
                            killed = time.monotonic()
                            for w in workers:
                                os.kill(w.pid, signal.SIGKILL)
            return events, killed, srv.healthy(timeout=2)

        events, killed, healthy_after = asyncio.run(inflight())
        ended = time.monotonic() - killed
        assert events[-1] == "[DONE]", events[-3:]
        error = json.loads(events[-2])["error"]
        assert error["code"] == "worker_died", error
        assert not healthy_after  # /health fails at once
        rc = srv.proc.wait(timeout=30)
        exited = time.monotonic() - killed
        # the documented status (MAX's own unwinding would exit 1, seconds later)
        assert rc == EXIT_WORKER_DIED and exited < 5.0, (rc, exited)
    finally:
        srv.stop()
    REPORT.append(
        {
            "scenario": "model worker SIGKILLed mid-stream",
            "requests": 1,
            "ok": 1,
            "lost": 0,
            "5xx": 0,
            "p50_ms": float("nan"),
            "p99_ms": float("nan"),
            "note": f"stream ended with a worker_died error event and [DONE] {ended:.2f}s after "
            f"the kill; /health failed; quote serve exited {rc} after {exited:.1f}s",
        }
    )


def test_report() -> None:
    """Prints the reliability table collected above."""
    if not REPORT:
        pytest.skip("nothing ran")
    print("\n| scenario | requests | completed correctly | lost | 5xx | p50 ms | p99 ms | note |")
    for r in REPORT:
        print(
            f"| {r['scenario']} | {r['requests']} | {r['ok']} | {r['lost']} | {r['5xx']} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r.get('note', '')} |"
        )
