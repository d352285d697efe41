# SPDX-License-Identifier: Apache-2.0
"""Start and stop a real ``quote serve`` subprocess for tests (loopback only)."""

from __future__ import annotations

from pathlib import Path

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
