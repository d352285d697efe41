# SPDX-License-Identifier: Apache-2.0
"""Mixed batches through a real ``quote serve --max-batch-size 8``, as clients send them.

Requests with and without mods, streaming and not, are sent concurrently; each
must equal the same request sent alone (text, finish reason, tool calls, error),
and none may exceed ``max_tokens``. The in-process version with more rounds,
prefix caching and chunked prefill is ``test_mixed_batches.py``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_proc import mod_server, served_name

from quote.server.process import ServerProcess

pytestmark = pytest.mark.integration

KEY = "mixed-key"
ROUNDS = 30
MODS = (
    (Path(__file__).parents[2] / "benchmarks" / "mixed_mods.py").read_text()
    + """

@mod
def raises(e, a, t):
    if isinstance(e, Added) and e.step == 1:
        raise ValueError("boom")
"""
)
NAMES = ["noop", "mask", "force", "backtrack", "tool", "fixed", "raises"]
PROMPTS = ["hi", "request number 1", "what is the time?"]


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("mixed-server")
    with mod_server(tiny_model, workdir, KEY, MODS, NAMES) as srv:
        yield srv


def _body(served: str, key: tuple[Any, ...]) -> dict[str, Any]:
    mod, prompt, max_tokens, stream = key
    body: dict[str, Any] = {
        "model": served if mod is None else f"{served}/{mod}",
        "messages": [{"role": "user", "content": PROMPTS[prompt]}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


async def _call(c: httpx.AsyncClient, body: dict[str, Any]) -> tuple[Any, ...]:
    """(status, text, finish_reason, tool calls, completion tokens)."""
    if not body["stream"]:
        r = await c.post("/v1/chat/completions", json=body)
        if r.status_code != 200:
            return (r.status_code, r.json()["error"]["message"], None, None, 0)
        data = r.json()
        ch = data["choices"][0]
        calls = [x["function"] for x in ch["message"].get("tool_calls") or []]
        usage = data["usage"]["completion_tokens"]
        return (200, ch["message"]["content"] or "", ch["finish_reason"], calls, usage)
    parts, reasons, calls, usage = [], [], [], 0
    async with c.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200, await r.aread()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev = json.loads(line[6:])
            if "error" in ev:
                return (599, ev["error"]["message"], None, None, 0)
            if ev.get("usage"):
                usage = ev["usage"]["completion_tokens"]
            for ch in ev.get("choices") or []:
                parts.append((ch.get("delta") or {}).get("content") or "")
                calls += [x["function"] for x in (ch.get("delta") or {}).get("tool_calls") or []]
                if ch.get("finish_reason"):
                    reasons.append(ch["finish_reason"])
    assert len(reasons) == 1, reasons  # exactly one chunk carries the finish reason
    return (200, "".join(parts), reasons[0], calls, usage)


def test_concurrent_mixed_requests_equal_solo(server: ServerProcess) -> None:
    served = served_name(server)
    rng = random.Random(14)
    solo: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    mismatches, checked = [], 0
    t0 = time.perf_counter()

    async def run() -> None:
        nonlocal checked
        async with httpx.AsyncClient(base_url=server.base, timeout=120) as c:
            for i in range(ROUNDS):
                keys = [
                    (
                        rng.choice([None, None, *NAMES]),
                        rng.randrange(len(PROMPTS)),
                        rng.choice((8, 12)),
                        rng.random() < 0.5,
                    )
                    for _ in range(rng.randint(3, 8))
                ]
                got = await asyncio.gather(*(_call(c, _body(served, k)) for k in keys))
                for k, g in zip(keys, got, strict=True):
                    if k not in solo:
                        solo[k] = await _call(c, _body(served, k))
                    checked += 1
                    assert g[4] <= k[2] or k[0] == "fixed", (i, k, g)
                    if g != solo[k]:
                        mismatches.append((i, k, g, solo[k]))

    asyncio.run(run())
    print(
        f"\nserver mixed batches: {ROUNDS} rounds, {checked} requests, "
        f"{len(mismatches)} mismatches, {time.perf_counter() - t0:.1f} s"
    )
    assert mismatches == [], mismatches[:3]
