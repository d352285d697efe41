# SPDX-License-Identifier: Apache-2.0
"""Per-request results handed from the model worker to the API process.

The worker writes ``<dir>/<ticket>.json`` (atomically) when a request with a
ticket finishes: finish reason, error, tool calls and, when asked, the trace.
The API process reads and deletes it once the response's last chunk arrives.
The directory lives under the mods directory (``.results``), never in /tmp.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from quote.mods.registry import default_mods_dir

__all__ = ["read_result", "read_stats", "spool_dir", "sweep", "write_result", "write_stats"]

_TICKET = re.compile(r"^[0-9a-f]{32}$")


def spool_dir() -> Path:
    """``<mods dir>/.results``."""
    return default_mods_dir() / ".results"


def write_result(ticket: str, result: dict[str, Any]) -> None:
    """Atomically write a finished request's result (worker side)."""
    if not _TICKET.match(ticket):
        raise ValueError("invalid ticket")
    d = spool_dir()
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{ticket}.tmp"
    tmp.write_text(json.dumps(result, default=str))
    os.replace(tmp, d / f"{ticket}.json")


def read_result(ticket: str, wait_s: float = 2.0) -> dict[str, Any] | None:
    """Read and delete a result (API side); waits briefly for the worker's write."""
    if not _TICKET.match(ticket):
        return None
    path = spool_dir() / f"{ticket}.json"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
            continue
        path.unlink(missing_ok=True)
        return data


def sweep(max_age_s: float = 600.0) -> int:
    """Delete results nobody read (e.g. the client disconnected); returns how many."""
    d = spool_dir()
    if not d.is_dir():
        return 0
    now = time.time()
    n = 0
    for p in d.iterdir():
        if p.name == "worker-stats.json":
            continue
        try:
            if now - p.stat().st_mtime > max_age_s:
                p.unlink()
                n += 1
        except OSError:
            continue
    return n


def write_stats(stats: dict[str, Any]) -> None:
    """Publish the worker's live counts (atomically) for ``GET /v1/quote/stats``."""
    d = spool_dir()
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / ".worker-stats.tmp"
    tmp.write_text(json.dumps({**stats, "written": time.time()}))
    os.replace(tmp, d / "worker-stats.json")


def read_stats() -> dict[str, Any] | None:
    """The worker's last published counts, or None before the first release."""
    try:
        data: dict[str, Any] = json.loads((spool_dir() / "worker-stats.json").read_text())
    except (OSError, ValueError):
        return None
    return data
