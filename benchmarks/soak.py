# SPDX-License-Identifier: Apache-2.0
"""Soak test: a long mixed load against a running `quote serve`, reporting losses and latency.

Start a server first (registration on, so the script can install its mods)::

    QUOTE_ADMIN_KEY=soak make serve
    .venv/bin/python benchmarks/soak.py --base http://127.0.0.1:8000 --key soak --minutes 10

Each round sends ``--concurrency`` requests at once (a mix of no mod, Noop, a logit mask,
forced tokens, a backtrack, a tool call and a forced output; half of them streaming), checks
every response's shape, and every ``--check-every`` rounds compares greedy outputs with a
reference taken at start. Prints a table: requests, completed, lost, 5xx, mismatches, p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from mixed_mods import MIX

MODS = (Path(__file__).parent / "mixed_mods.py").read_text()


async def one(c: httpx.AsyncClient, body: dict[str, Any]) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    try:
        if not body["stream"]:
            r = await c.post("/v1/chat/completions", json=body)
            if r.status_code != 200:
                return r.status_code, r.text, time.perf_counter() - t0
            ch = r.json()["choices"][0]
            calls = ch["message"].get("tool_calls")
            return (
                200,
                json.dumps(calls and [x["function"] for x in calls])
                + (ch["message"]["content"] or ""),
                time.perf_counter() - t0,
            )
        parts: list[str] = []
        async with c.stream("POST", "/v1/chat/completions", json=body) as r:
            if r.status_code != 200:
                return r.status_code, "", time.perf_counter() - t0
            calls: list[Any] = []
            async for line in r.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    d = json.loads(line[6:])
                    if "error" in d:
                        return 599, line, time.perf_counter() - t0
                    if d.get("choices"):
                        delta = d["choices"][0].get("delta") or {}
                        parts.append(delta.get("content") or "")
                        calls += [x["function"] for x in delta.get("tool_calls") or []]
        return 200, json.dumps(calls or None) + "".join(parts), time.perf_counter() - t0
    except httpx.HTTPError as exc:
        return -1, repr(exc), time.perf_counter() - t0


def bodies(served: str, n: int, salt: int) -> list[dict[str, Any]]:
    return [
        {
            "model": served if MIX[i % len(MIX)] is None else f"{served}/{MIX[i % len(MIX)]}",
            "messages": [{"role": "user", "content": f"soak {(i + salt) % 5}"}],
            "max_tokens": 16,
            "temperature": 0,
            "stream": bool(i % 2),
        }
        for i in range(n)
    ]


async def main_async(a: argparse.Namespace) -> dict[str, Any]:
    global MIX  # the registered names carry a prefix
    async with httpx.AsyncClient(base_url=a.base, timeout=300) as c:
        for name in [m for m in MIX if m]:
            r = await c.post(
                "/v1/mods",
                json={"name": f"soak-{name}", "source": MODS, "entrypoint": name},
                headers={"Authorization": f"Bearer {a.key}"},
            )
            r.raise_for_status()
        MIX = [None if m is None else f"soak-{m}" for m in MIX]
        served = (await c.get("/v1/models")).json()["data"][0]["id"]
        reference = {
            json.dumps(b, sort_keys=True): (await one(c, b))[1]
            for b in bodies(served, len(MIX) * 2 * 5, 0)
        }
        stats = {"requests": 0, "completed": 0, "lost": 0, "5xx": 0, "mismatch": 0}
        lat: list[float] = []
        deadline = time.monotonic() + a.minutes * 60
        rnd = 0
        while time.monotonic() < deadline:
            batch = bodies(served, a.concurrency, rnd)
            res = await asyncio.gather(*(one(c, b) for b in batch))
            for b, (code, text, dt) in zip(batch, res, strict=True):
                stats["requests"] += 1
                lat.append(dt)
                if code == 200:
                    stats["completed"] += 1
                    ref = reference.get(json.dumps(b, sort_keys=True))
                    if rnd % a.check_every == 0 and ref is not None and ref != text:
                        stats["mismatch"] += 1
                elif code == -1:
                    stats["lost"] += 1
                elif code >= 500:
                    stats["5xx"] += 1
            rnd += 1
        lat.sort()
        stats["p50_ms"] = statistics.median(lat) * 1000
        stats["p99_ms"] = lat[int(0.99 * (len(lat) - 1))] * 1000
        return stats


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--base", default="http://127.0.0.1:8000")
    p.add_argument("--key", required=True, help="the server's QUOTE_ADMIN_KEY")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--check-every", type=int, default=5)
    s = asyncio.run(main_async(p.parse_args()))
    print("| requests | completed | lost | 5xx | greedy mismatches | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {s['requests']} | {s['completed']} | {s['lost']} | {s['5xx']} | {s['mismatch']} | {s['p50_ms']:.0f} | {s['p99_ms']:.0f} |"
    )


if __name__ == "__main__":
    main()
