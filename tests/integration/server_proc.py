# SPDX-License-Identifier: Apache-2.0
"""Start and stop a real ``quote serve`` subprocess for tests (loopback only)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai

from quote.server.process import ServerProcess
from quote.server.process import register_mod as post_mod


class Server(ServerProcess):
    """A ``quote serve`` process on the tiny model; ``env`` entries go to its environment."""

    def __init__(self, model: Path, mods_dir: Path, log: Path, **env: str) -> None:
        super().__init__(model, mods_dir=mods_dir, log=log, env=env)


def register_mod(
    srv: Server,
    key: str,
    name: str,
    source: str | dict[str, str],
    entrypoint: str,
    description: str = "",
) -> None:
    """Register a mod over HTTP; the test fails unless it is created."""
    status, text = post_mod(srv.base, key, name, source, entrypoint, description)
    assert status == 201, text


def openai_client(srv: Server) -> openai.OpenAI:
    """The official client for ``srv`` (no retries, generous timeout)."""
    return openai.OpenAI(base_url=srv.base + "/v1", api_key="unused", max_retries=0, timeout=120)


@contextmanager
def mod_server(
    model: Path,
    workdir: Path,
    key: str,
    source: str,
    names: Sequence[str],
    *,
    max_batch_size: int = 8,
    **env: str,
) -> Iterator[ServerProcess]:
    """A ready ``quote serve`` (batches of ``max_batch_size``) with the mods ``names`` of
    ``source`` registered under their own names; stopped on exit."""
    srv = ServerProcess(
        model,
        mods_dir=workdir / "mods",
        log=workdir / "server.log",
        max_batch_size=max_batch_size,
        env={"QUOTE_ADMIN_KEY": key, **env},
    )
    try:
        srv.wait_ready()
        for name in names:
            status, text = post_mod(srv.base, key, name, source, name)
            assert status == 201, text
        yield srv
    finally:
        srv.stop()


def served_name(srv: ServerProcess) -> str:
    """The model name the server serves (the first ``/v1/models`` entry)."""
    return str(httpx.get(srv.base + "/v1/models", timeout=30).json()["data"][0]["id"])
