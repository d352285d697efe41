# SPDX-License-Identifier: Apache-2.0
"""``quote serve`` passes flags it does not define to ``max serve``: ``--enable-prefix-caching``.

The flag must reach ``max serve``'s command line, and the server must then reuse cached
prompt pages (``usage.prompt_tokens_details.cached_tokens`` >= 128 on a repeated long
prompt; MAX's page is 128 tokens) with identical outputs, with and without a mod.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest
from server_proc import register_mod

from quote.server.process import ServerProcess

pytestmark = pytest.mark.integration

KEY = "flags-key"
NOOP = "from quote.sdk import mod\n\n@mod\ndef noop(event, actions, tokenizer):\n    return None\n"
LONG = " ".join(f"line {i}: the quick brown fox jumps over the lazy dog." for i in range(20))


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    d = tmp_path_factory.mktemp("serve-flags")
    srv = ServerProcess(
        tiny_model,
        mods_dir=d / "mods",
        log=d / "server.log",
        env={"QUOTE_ADMIN_KEY": KEY},
        extra_args=["--enable-prefix-caching"],
    )
    try:
        srv.wait_ready()
        register_mod(srv, KEY, "noop", NOOP, "noop")  # type: ignore[arg-type]
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def served(server: ServerProcess) -> str:
    return str(httpx.get(server.base + "/v1/models").json()["data"][0]["id"])


def _runs(server: ServerProcess, model: str) -> list[Any]:
    client = openai.OpenAI(base_url=server.base + "/v1", api_key="x", max_retries=0, timeout=120)
    return [
        client.completions.create(model=model, prompt=LONG, max_tokens=6, temperature=0)
        for _ in range(2)
    ]


def _cached(usage: Any) -> int:
    details = usage.prompt_tokens_details
    return int(details.cached_tokens or 0) if details is not None else 0


def test_enable_prefix_caching_reaches_max_serve(server: ServerProcess, served: str) -> None:
    tree = psutil.Process(server.proc.pid).children(recursive=True)
    cmds = [p.cmdline() for p in tree]
    assert any("serve" in c and "--enable-prefix-caching" in c for c in cmds), cmds
    first, again = _runs(server, served)
    assert first.usage.prompt_tokens > 256 and _cached(first.usage) == 0
    assert again.choices[0].text == first.choices[0].text
    assert _cached(again.usage) >= 128, again.usage  # whole 128-token pages reused


def test_prefix_cache_with_a_mod(server: ServerProcess, served: str) -> None:
    """The prompt's pages are cached by now (the bare test ran it): a modded request reuses
    them, gives the bare output, and reports the cached tokens in ``usage``."""
    bare = _runs(server, served)[0]
    for run in _runs(server, f"{served}/noop"):
        assert run.choices[0].text == bare.choices[0].text
        assert _cached(run.usage) >= 128, run.usage
