# SPDX-License-Identifier: Apache-2.0
"""Streaming clients through ``quote serve``: requests/s and latency, with and without mods.

Benchmark 6 of issue 8. Starts ``quote serve`` (or uses ``--server-url``), registers two mods
over ``POST /v1/mods`` and drives the server with the official ``openai`` async client:

- ``none``: the served model, no mod;
- ``noop``: ``<served>/bench-noop``, a mod returning None (Noop) on every event;
- ``mask``: ``<served>/bench-mask``, a mod returning ``adjust_logits(allow=<64 ids>)`` at every
  ``ForwardPass``.

For each concurrency level, C clients each send ``--requests-per-client`` streaming chat
completions one after another (temperature 0, ``max_tokens`` fixed, ``ignore_eos`` so every
completion has exactly that length). Per request: latency (submit to the end of the stream),
time to first content chunk, completion tokens (the ``include_usage`` chunk). Per level:
requests/s and output tokens/s over its wall time. Configurations run in turn at each level,
their order rotating each repetition, in one server process; the ratio is the median over
repetitions of the configuration's requests/s over ``none``'s of the same repetition.
Any failed or short request is reported and makes the exit status 1.

The mods keep the SDK's default ``hold_back`` (16): a streaming request with a mod withholds its
last 16 tokens until the mod can no longer rewrite them, so its first content chunk comes ~16
decode steps later than without a mod. ``--hold-back 0`` streams them as soon as they exist.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
from _common import (
    add_common_args,
    machine_info,
    markdown_table,
    model_dir,
    register_mod,
    write_json,
)

from quote.sdk import DEFAULT_HOLD_BACK
from quote.server.process import ServerProcess

MODS_SOURCE = """
from quote.sdk import ForwardPass, mod

ALLOW = list(range(100, 164))

@mod(hold_back={hold_back})
def noop(event, actions, tokenizer):
    return None

@mod(hold_back={hold_back})
def mask(event, actions, tokenizer):
    if isinstance(event, ForwardPass):
        return actions.adjust_logits(allow=ALLOW)
    return None
"""
CONFIGS = ("none", "noop", "mask")
MOD_NAMES = {"noop": "bench-noop", "mask": "bench-mask"}


@dataclass
class Sample:
    """One streaming request: seconds to the first content chunk and to the end, tokens."""

    latency_s: float
    ttft_s: float
    tokens: int
    chunks: int
    error: str | None = None


async def one_request(
    client: openai.AsyncOpenAI, model: str, prompt: str, max_tokens: int
) -> Sample:
    """Send one streaming chat completion and time it; errors are returned, not raised."""
    t0, ttft, chunks = time.perf_counter(), float("nan"), 0
    usage: int | None = None
    try:
        stream = await client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"ignore_eos": True},
        )
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage.completion_tokens
            if chunk.choices and chunk.choices[0].delta.content:
                chunks += 1
                if chunks == 1:
                    ttft = time.perf_counter() - t0
    except (openai.APIError, httpx.HTTPError) as exc:
        return Sample(
            time.perf_counter() - t0, ttft, chunks, chunks, f"{type(exc).__name__}: {exc}"
        )
    tokens = usage if usage is not None else chunks
    err = None if tokens == max_tokens else f"short completion: {tokens} of {max_tokens} tokens"
    return Sample(time.perf_counter() - t0, ttft, tokens, chunks, err)


async def run_level(
    client: openai.AsyncOpenAI, model: str, concurrency: int, per_client: int, a: Any
) -> tuple[float, list[Sample]]:
    """``concurrency`` clients, each sending ``per_client`` requests in turn; wall s, samples."""

    async def one_client() -> list[Sample]:
        return [await one_request(client, model, a.prompt, a.max_tokens) for _ in range(per_client)]

    t0 = time.perf_counter()
    per = await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return time.perf_counter() - t0, [s for ss in per for s in ss]


def pct_ms(values: list[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` (seconds) in ms (numpy's linear interpolation)."""
    vals = [v for v in values if v == v]
    return float(np.percentile(vals, q)) * 1e3 if vals else float("nan")


async def bench(base: str, a: Any) -> dict[str, Any]:
    """Warm up, then run every (repetition, level, configuration); the raw results."""
    client = openai.AsyncOpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=600)
    listed = [m.id for m in (await client.models.list()).data]
    served = listed[0]
    models = {c: served if c == "none" else f"{served}/{MOD_NAMES[c]}" for c in CONFIGS}
    missing = sorted(set(models.values()) - set(listed))
    if missing:
        raise RuntimeError(f"not served: {missing} (pass --admin-key to register the mods)")
    warm = max(a.levels)
    for cfg in CONFIGS:  # untimed: first requests, every batch size up to the largest level
        _, samples = await run_level(client, models[cfg], warm, 1, a)
        bad = [s.error for s in samples if s.error]
        if bad:
            raise RuntimeError(f"warm-up of {cfg!r} failed: {bad[0]}")
        print(f"warmed up {cfg}", flush=True)
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {
        c: {n: [] for n in a.levels} for c in CONFIGS
    }
    errors: list[str] = []
    for rep in range(a.reps):
        order = list(CONFIGS[rep % len(CONFIGS) :] + CONFIGS[: rep % len(CONFIGS)])
        for n in a.levels:
            for cfg in order:
                wall, samples = await run_level(client, models[cfg], n, a.requests_per_client, a)
                runs[cfg][n].append({"wall_s": wall, "samples": [vars(s) for s in samples]})
                errors += [s.error for s in samples if s.error]
                print(f"rep {rep} c={n:<3} {cfg:<5} {len(samples) / wall:7.2f} req/s", flush=True)
    await client.close()
    return {"served_model": served, "models": models, "errors": errors, "runs": runs}


def summarise(
    runs: dict[str, dict[int, list[dict[str, Any]]]], levels: list[int]
) -> list[dict[str, Any]]:
    """One row per (configuration, level): medians over repetitions, percentiles over requests."""
    rows = []
    for n in levels:
        base_rps = [len(r["samples"]) / r["wall_s"] for r in runs["none"][n]]
        for cfg in CONFIGS:
            reps = runs[cfg][n]
            samples = [s for r in reps for s in r["samples"]]
            rps = [len(r["samples"]) / r["wall_s"] for r in reps]
            tps = [sum(s["tokens"] for s in r["samples"]) / r["wall_s"] for r in reps]
            rows.append(
                {
                    "config": cfg,
                    "concurrency": n,
                    "requests": len(samples),
                    "errors": sum(1 for s in samples if s["error"]),
                    "req_per_s": statistics.median(rps),
                    "p50_ms": pct_ms([s["latency_s"] for s in samples], 50),
                    "p99_ms": pct_ms([s["latency_s"] for s in samples], 99),
                    "ttft_p50_ms": pct_ms([s["ttft_s"] for s in samples], 50),
                    "tokens_per_s": statistics.median(tps),
                    "ratio_vs_none": statistics.median(
                        x / b for x, b in zip(rps, base_rps, strict=True)
                    ),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write JSON; 1 if any request failed."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p, reps=3, out="/tmp/quote-bench/server.json")
    p.add_argument("--concurrency", default="1,8,32", help="comma-separated client counts")
    p.add_argument("--requests-per-client", type=int, default=4)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--prompt", default="Tell me a short story about a lighthouse keeper.")
    p.add_argument("--hold-back", type=int, default=DEFAULT_HOLD_BACK, help="the mods' hold_back")
    p.add_argument("--port", type=int, default=None, help="for the server (default: a free one)")
    p.add_argument("--server-url", default=None, help="a running server to use instead")
    p.add_argument(
        "--admin-key",
        default=os.environ.get("QUOTE_ADMIN_KEY"),
        help="QUOTE_ADMIN_KEY of --server-url, to register the mods (else they must exist)",
    )
    p.add_argument(
        "--max-batch-size",
        type=int,
        default=None,
        help="start max serve with this batch size (default: plain quote serve; 1 on CPU)",
    )
    p.add_argument("--startup-timeout", type=float, default=600.0)
    a = p.parse_args(argv)
    a.levels = [int(x) for x in a.concurrency.split(",")]

    srv: ServerProcess | None = None
    if a.server_url:
        base = a.server_url.rstrip("/").removesuffix("/v1")
        key = a.admin_key
    else:
        work = Path(tempfile.mkdtemp(prefix="quote-bench-server-"))
        key = secrets.token_hex(16)
        srv = ServerProcess(
            model_dir(a.model),
            mods_dir=work / "mods",
            log=work / "server.log",
            devices=a.devices,
            port=a.port,
            max_batch_size=a.max_batch_size,
            env={"QUOTE_ADMIN_KEY": key},
        )
        base = srv.base
        print(f"starting quote serve on {base} (log: {srv.log})", flush=True)
    try:
        if srv is not None:
            t0 = time.perf_counter()
            srv.wait_ready(a.startup_timeout)
            print(f"server ready in {time.perf_counter() - t0:.0f} s", flush=True)
        if key:
            for cfg, name in MOD_NAMES.items():
                register_mod(base, key, name, MODS_SOURCE.format(hold_back=a.hold_back), cfg)
        raw = asyncio.run(bench(base, a))
    finally:
        if srv is not None:
            srv.stop()
    rows = summarise(raw["runs"], a.levels)
    headers = ["configuration", "concurrency", "req/s", "p50 ms", "p99 ms", "TTFT p50 ms"]
    headers += ["tokens/s", "ratio vs none", "errors"]
    table = [
        [r["config"], r["concurrency"], r["req_per_s"], r["p50_ms"], r["p99_ms"]]
        + [r["ttft_p50_ms"], r["tokens_per_s"], f"{r['ratio_vs_none']:.3f}x", r["errors"]]
        for r in rows
    ]
    print()
    print(markdown_table(headers, table))
    opts = {k: v for k, v in vars(a).items() if k != "admin_key"}
    log = {"log": str(srv.log), "cmd": srv.cmd} if srv is not None else None
    out = {"benchmark": "server", "args": opts, "machine": machine_info(a.devices)}
    write_json(a.out, {**out, "server": log, "rows": rows, **raw})
    if raw["errors"]:
        print(f"{len(raw['errors'])} request(s) failed; first: {raw['errors'][0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
