# SPDX-License-Identifier: Apache-2.0
"""The original engine's workflow over HTTP: ``serialize_mod`` body, ``POST /v1/mods``, chat.

Original-style mods from ``tests/legacy_mods.py`` are serialised with
``quote_mod_sdk.serialize_mod`` (the original's body: ``language``, ``module``,
``entrypoint``, ``source``), registered on a real ``quote serve`` and selected
with ``"<model>/<mod>"``, as with the original engine.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from quote.sdk.compat import QuoteModSDKDeprecationWarning, serialize_mod
from quote.server.process import ServerProcess

with warnings.catch_warnings():
    warnings.simplefilter("ignore", QuoteModSDKDeprecationWarning)
    import legacy_mods as L

pytestmark = pytest.mark.integration
KEY = "compat-admin-key"
MODS = {
    "weather": L.prefilled_tool_calls,
    "backtrack": L.forward_pass_backtrack,
    "sampled-end": L.sampled_force_output,
    "refuse": L.prefilled_emit_error,
}


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("compat-server")
    srv = ServerProcess(
        tiny_model,
        mods_dir=workdir / "mods",
        log=workdir / "server.log",
        env={"QUOTE_ADMIN_KEY": KEY},
    )
    try:
        srv.wait_ready()
        for name, definition in MODS.items():
            body = serialize_mod(definition, name=name, description="original-style")
            assert body["module"] == "legacy_mods" and body["language"] == "python"
            reply = httpx.post(
                srv.base + "/v1/mods",
                json=body,
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=120,
            )
            assert reply.status_code == 201, reply.text
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def served(client: openai.OpenAI) -> str:
    return client.models.list().data[0].id


def _chat(client: openai.OpenAI, model: str, text: str, **kw: object) -> object:
    return client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        max_tokens=24,
        temperature=0,
        **kw,  # type: ignore[arg-type]
    )


def test_tool_calls_reach_the_client_openai_shaped(client: openai.OpenAI, served: str) -> None:
    reply = _chat(client, f"{served}/weather", "What's the weather like?")
    choice = reply.choices[0]  # type: ignore[attr-defined]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert call.function.arguments == '{"location": "New York"}'
    assert call.id.startswith("call_")


def test_force_output_is_the_whole_answer(client: openai.OpenAI, served: str) -> None:
    reply = _chat(client, f"{served}/sampled-end", "Keep counting.")
    assert reply.choices[0].message.content == " [SAMPLED_END]"  # type: ignore[attr-defined]


def test_emit_error_fails_the_request(client: openai.OpenAI, served: str) -> None:
    with pytest.raises(openai.APIError) as caught:
        _chat(client, f"{served}/refuse", "Hi")
    assert "refused: prompt blocked" in str(caught.value)


def test_streamed_backtrack_is_held_back_not_retracted(client: openai.OpenAI, served: str) -> None:
    """The stream never shows the two tokens the mod takes back: it equals the whole answer."""
    whole = _chat(client, f"{served}/backtrack", "Tell me a story.")
    text = whole.choices[0].message.content  # type: ignore[attr-defined]
    assert " [BACKTRACKED]" in text
    stream = _chat(client, f"{served}/backtrack", "Tell me a story.", stream=True)
    deltas = [c.choices[0].delta.content or "" for c in stream if c.choices]  # type: ignore[attr-defined]
    assert "".join(deltas) == text
