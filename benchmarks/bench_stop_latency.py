# SPDX-License-Identifier: Apache-2.0
"""Latency of a streaming request with a stop string, bare and with a Noop mod.

Runs ``quote serve`` (tiny model, CPU) once per source tree given with ``--tree
NAME=PATH`` (``PATH`` first on ``PYTHONPATH``, so an older checkout can be measured
side by side with this one in the same run) and reports, per tree and request kind,
the median wall time of the whole request and of the tail: from the last content
event to ``[DONE]``.

    python benchmarks/bench_stop_latency.py --tree before=/tmp/quote-before --tree after=.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import markdown_table, model_dir

from quote.server.process import ServerProcess, register_mod

KEY = "bench-stop"
NOOP = "from quote.sdk import mod\n\n@mod\ndef noop(e, a, t):\n    return None\n"


def one(base: str, model: str) -> tuple[float, float, int]:
    """(total s, tail s, finish chunks) of one streaming request with a stop string."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 24,
        "temperature": 0,
        "stream": True,
        "stop": [" "],
    }
    t0 = time.perf_counter()
    last = t0
    finishes = 0
    with httpx.stream("POST", base + "/v1/chat/completions", json=body, timeout=60) as r:
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev: dict[str, Any] = json.loads(line[6:])
            for ch in ev.get("choices") or []:
                if (ch.get("delta") or {}).get("content"):
                    last = time.perf_counter()
                finishes += bool(ch.get("finish_reason"))
    end = time.perf_counter()
    return end - t0, end - last, finishes


def measure(tree: Path, model: Path, reps: int) -> dict[str, dict[str, float]]:
    """Median total and tail latency (ms) per request kind against ``tree``'s server."""
    work = Path(tempfile.mkdtemp(prefix="bench-stop-"))
    env = {
        "QUOTE_ADMIN_KEY": KEY,
        "PYTHONPATH": f"{tree.resolve()}:{os.environ.get('PYTHONPATH', '')}",
    }
    with ServerProcess(model, mods_dir=work / "mods", log=work / "log", env=env) as srv:
        srv.wait_ready()
        status, text = register_mod(srv.base, KEY, "noop", NOOP, "noop")
        assert status in (200, 201), text
        served = str(httpx.get(srv.base + "/v1/models").json()["data"][0]["id"])
        out = {}
        for kind, name in (("bare", served), ("noop mod", f"{served}/noop")):
            one(srv.base, name)  # warm-up
            runs = [one(srv.base, name) for _ in range(reps)]
            out[kind] = {
                "total_ms": statistics.median(r[0] for r in runs) * 1e3,
                "tail_ms": statistics.median(r[1] for r in runs) * 1e3,
                "finish_chunks": max(r[2] for r in runs),
            }
        return out


def main() -> None:
    """Measure each ``--tree`` in turn and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()
    trees = [t.split("=", 1) for t in args.tree] or [["this", "."]]
    model = model_dir(None)
    rows = []
    for name, path in trees:
        for kind, m in measure(Path(path), model, args.reps).items():
            rows.append(
                [name, kind, f"{m['total_ms']:.0f}", f"{m['tail_ms']:.0f}", m["finish_chunks"]]
            )
    print(
        markdown_table(
            ["tree", "request", "total ms (median)", "last content -> [DONE] ms", "finish chunks"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
