# SPDX-License-Identifier: Apache-2.0
"""Run ``quote serve`` as a subprocess: for integration tests, benchmarks and scripts.

>>> with ServerProcess("/models/tiny", mods_dir="/tmp/mods", log="/tmp/serve.log") as srv:
...     srv.wait_ready()
...     print(srv.base)  # http://127.0.0.1:<port>

The server runs in its own process session on loopback, its output goes to ``log``, and
:meth:`ServerProcess.stop` ends the whole process group (MAX's API and model worker).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["ServerProcess", "free_port", "register_mod"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def register_mod(
    base: str,
    key: str,
    name: str,
    source: str | Mapping[str, str],
    entrypoint: str,
    description: str = "",
) -> tuple[int, str]:
    """Register (or replace) a mod with ``POST /v1/mods`` on the server at ``base``.

    ``source`` is one module's text or a bundle ``{"package/module.py": text}``. Returns the HTTP status (201 when created) and the response body.
    """
    body = {
        "name": name,
        "source": dict(source) if isinstance(source, Mapping) else source,
        "entrypoint": entrypoint,
        "description": description,
    }
    request = urllib.request.Request(
        base + "/v1/mods",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as r:  # noqa: S310 - caller's URL
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


class ServerProcess:
    """A ``quote serve`` subprocess; ``base`` is its URL.

    ``env`` entries are added to the environment (``QUOTE_ADMIN_KEY`` and ``QUOTE_RELOAD``
    are not inherited from this process, only taken from ``env``). Without
    ``max_batch_size`` MAX picks its default (1 on CPU: concurrent requests queue).
    ``extra_args`` go on the command line after Quote's own flags (``quote serve`` passes
    flags it does not know to ``max serve``, e.g. ``--enable-prefix-caching``).
    """

    def __init__(
        self,
        model: str | Path,
        *,
        mods_dir: str | Path,
        log: str | Path,
        devices: str = "cpu",
        port: int | None = None,
        max_length: int = 2048,
        max_batch_size: int | None = None,
        env: dict[str, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = Path(log)
        full_env = {
            k: v for k, v in os.environ.items() if k not in ("QUOTE_ADMIN_KEY", "QUOTE_RELOAD")
        }
        full_env.update(env or {})
        full_env["MAX_SERVE_DISABLE_TELEMETRY"] = "1"
        cmd = [sys.executable, "-m", "quote.cli", "serve", "--model", str(model)]
        cmd += ["--devices", devices, "--port", str(self.port), "--max-length", str(max_length)]
        if max_batch_size is not None:
            cmd += ["--max-batch-size", str(max_batch_size)]
        self.cmd = cmd + ["--mods-dir", str(mods_dir), *extra_args]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                self.cmd, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def healthy(self, timeout: float = 5.0) -> bool:
        """Whether ``GET /health`` answers 200 now."""
        try:
            with urllib.request.urlopen(self.base + "/health", timeout=timeout) as r:
                return int(r.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 600.0) -> None:
        """Poll ``/health`` until 200; raise with the log's tail if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"server exited ({self.proc.returncode}):\n{tail}")
            if self.healthy(timeout=2.0):
                return
            time.sleep(1)
        tail = self.log.read_text(errors="replace")[-3000:]
        raise TimeoutError(f"server not ready in {timeout:.0f} s:\n{tail}")

    def stop(self) -> int:
        """SIGTERM the process group (SIGKILL after 30 s); the exit status."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return int(self.proc.returncode)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
