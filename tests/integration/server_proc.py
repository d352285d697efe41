# SPDX-License-Identifier: Apache-2.0
"""Start and stop a real ``quote serve`` subprocess for tests (loopback only)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A ``quote serve`` process on the tiny model; ``base`` is its URL."""

    def __init__(self, model: Path, mods_dir: Path, log: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full_env = {
            k: v for k, v in os.environ.items() if k not in ("QUOTE_ADMIN_KEY", "QUOTE_RELOAD")
        }
        full_env.update(env)
        full_env["MAX_SERVE_DISABLE_TELEMETRY"] = "1"
        cmd = [
            sys.executable,
            "-m",
            "quote.cli",
            "serve",
            "--model",
            str(model),
            "--port",
            str(self.port),
        ]
        cmd += ["--mods-dir", str(mods_dir), "--max-length", "2048"]
        self.log = log
        self.proc = subprocess.Popen(
            cmd,
            env=full_env,
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise TimeoutError(f"server not ready:\n{self.log.read_text()[-3000:]}")

    def healthy(self) -> bool:
        try:
            return httpx.get(self.base + "/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return int(self.proc.returncode)


def register_mod(
    srv: Server, key: str, name: str, source: object, entrypoint: str, description: str = ""
) -> None:
    """Register a mod over HTTP; the test fails unless it is created."""
    r = httpx.post(
        srv.base + "/v1/mods",
        json={"name": name, "source": source, "entrypoint": entrypoint, "description": description},
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )
    assert r.status_code == 201, r.text


def openai_client(srv: Server) -> openai.OpenAI:
    """The official client for ``srv`` (no retries, generous timeout)."""
    return openai.OpenAI(base_url=srv.base + "/v1", api_key="unused", max_retries=0, timeout=120)
