# SPDX-License-Identifier: Apache-2.0
"""The OpenAI API as the ``openai`` client uses it, against a real ``quote serve``.

Every feature runs bare (the served model) and modded (``<served>/noop``, a mod that does
nothing, so outputs must equal the bare ones; tools use ``<served>/tool``). Outcomes
land in the client matrix (``client_matrix.py``), printed by the last test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pydantic
import pytest
from client_matrix import CLIENT_MODS, cell, table
from server_proc import mod_server, openai_client

from quote.server.process import ServerProcess

pytestmark = pytest.mark.integration

KEY = "clients-key"

VARIANTS = ["bare", "modded"]
MSG = [{"role": "user", "content": "Tell me about the weather"}]
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {
            "type": "object",
            "properties": {"id": {"type": "integer", "minimum": 0, "maximum": 99}},
            "required": ["id"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("client-openai")
    with mod_server(
        tiny_model, workdir, KEY, CLIENT_MODS, ("noop", "tool", "which"), QUOTE_MAX_N="4"
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return openai_client(server)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def served(client: openai.OpenAI) -> str:
    return client.models.list().data[0].id


def _model(served: str, variant: str, mod: str = "noop") -> str:
    return served if variant == "bare" else f"{served}/{mod}"


def _chat(client: openai.OpenAI, model: str, **kw: Any) -> Any:
    kw.setdefault("messages", MSG)
    kw.setdefault("max_tokens", 10)
    kw.setdefault("temperature", 0)
    return client.chat.completions.create(model=model, **kw)


def _stream_text(chunks: Any, chat: bool = True) -> tuple[dict[int, str], dict[int, list[str]]]:
    """Text and finish reasons per choice index of a stream."""
    texts: dict[int, str] = {}
    reasons: dict[int, list[str]] = {}
    for chunk in chunks:
        for c in chunk.choices:
            piece = (c.delta.content if chat else c.text) or ""
            texts[c.index] = texts.get(c.index, "") + piece
            if c.finish_reason:
                reasons.setdefault(c.index, []).append(c.finish_reason)
    return texts, reasons


def _pick_stop(text: str) -> str:
    """Two printable ASCII characters first seen at position >= 2 of ``text``."""
    for p in range(2, len(text) - 1):
        s = text[p : p + 2]
        if s.isascii() and s.isprintable() and text.find(s) == p:
            return s
    raise AssertionError(f"no usable stop string in {text!r}")  # greedy: deterministic


@pytest.mark.parametrize("variant", VARIANTS)
@cell("openai", "chat")
def test_chat(client: openai.OpenAI, served: str, variant: str) -> None:
    r = _chat(client, _model(served, variant))
    choice = r.choices[0]
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.message.refusal is None and choice.logprobs is None
    assert choice.finish_reason in ("stop", "length") and r.usage is not None
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    if variant == "modded":
        assert choice.message.content == _chat(client, served).choices[0].message.content


@pytest.mark.parametrize("variant", VARIANTS)
@cell("openai", "stream + include_usage")
def test_stream_with_usage(client: openai.OpenAI, served: str, variant: str) -> None:
    model = _model(served, variant)
    whole = _chat(client, model)
    chunks = list(_chat(client, model, stream=True, stream_options={"include_usage": True}))
    texts, reasons = _stream_text(chunks)
    assert texts[0] == whole.choices[0].message.content
    assert reasons == {0: [whole.choices[0].finish_reason]}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


@pytest.mark.parametrize("variant", VARIANTS)
@cell("openai", "n")
def test_n_choices(client: openai.OpenAI, served: str, variant: str) -> None:
    model = _model(served, variant)
    kw: dict[str, Any] = {"n": 3, "temperature": 1.0, "seed": 5, "max_tokens": 6}
    r = _chat(client, model, **kw)
    assert [c.index for c in r.choices] == [0, 1, 2]
    contents = [c.message.content for c in r.choices]
    assert len(set(contents)) >= 2, contents  # a seed per choice: choices differ
    assert [c.message.content for c in _chat(client, model, **kw).choices] == contents
    if all(c.finish_reason == "length" for c in r.choices):
        assert r.usage.completion_tokens == 18
    assert r.usage.prompt_tokens == _chat(client, model, max_tokens=1).usage.prompt_tokens
    kw["n"] = 2
    pair = _chat(client, model, **kw)
    two = [c.message.content for c in pair.choices]
    stream = _chat(client, model, stream=True, stream_options={"include_usage": True}, **kw)
    chunks = list(stream)
    texts, reasons = _stream_text(chunks)
    assert [texts[0], texts[1]] == two
    assert sorted(reasons) == [0, 1] and all(len(v) == 1 for v in reasons.values())
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == pair.usage.completion_tokens
    assert len({c.id for c in chunks}) == 1


@pytest.mark.parametrize("variant", ["modded"])
@cell("openai", "n: mods see choice_index")
def test_n_choice_index_reaches_mods(client: openai.OpenAI, served: str, variant: str) -> None:
    r = _chat(client, f"{served}/which", n=3, max_tokens=8)
    assert [c.message.content for c in r.choices] == ["choice 0", "choice 1", "choice 2"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_n_limits(server: ServerProcess, client: openai.OpenAI, served: str, variant: str) -> None:
    for n, needle in ((0, ">= 1"), (5, "<= 4")):
        with pytest.raises(openai.BadRequestError) as err:
            _chat(client, _model(served, variant), n=n)
        body: Any = err.value.body
        assert body["param"] == "n" and needle in body["message"], body


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("variant", VARIANTS)
@cell("openai", "stop (chat)")
def test_stop_chat(client: openai.OpenAI, served: str, variant: str, stream: bool) -> None:
    model = _model(served, variant)
    full = _chat(client, served, max_tokens=12).choices[0].message.content
    stop = _pick_stop(full)
    expected = full[: full.find(stop)]
    if stream:
        texts, reasons = _stream_text(_chat(client, model, max_tokens=12, stop=[stop], stream=True))
        assert (texts.get(0, ""), reasons) == (expected, {0: ["stop"]})
    else:
        r = _chat(client, model, max_tokens=12, stop=stop)
        assert (r.choices[0].message.content, r.choices[0].finish_reason) == (expected, "stop")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("variant", VARIANTS)
@cell("openai", "stop (completions)")
def test_stop_completions(client: openai.OpenAI, served: str, variant: str, stream: bool) -> None:
    model = _model(served, variant)
    kw: dict[str, Any] = {"prompt": "Once upon a time", "max_tokens": 12, "temperature": 0}
    full = client.completions.create(model=served, **kw).choices[0].text
    stop = _pick_stop(full)
    expected = full[: full.find(stop)]
    if stream:
        chunks = client.completions.create(model=model, stop=[stop], stream=True, **kw)
        texts, reasons = _stream_text(chunks, chat=False)
        assert (texts.get(0, ""), reasons) == (expected, {0: ["stop"]})
    else:
        r = client.completions.create(model=model, stop=[stop], **kw)
        assert (r.choices[0].text, r.choices[0].finish_reason) == (expected, "stop")


@pytest.mark.parametrize("variant", VARIANTS)
@cell("openai", "logprobs")
def test_logprobs(client: openai.OpenAI, served: str, variant: str) -> None:
    model = _model(served, variant)
    r = _chat(client, model, logprobs=True, top_logprobs=2, max_tokens=6)
    lp = r.choices[0].logprobs
    assert lp is not None and lp.refusal is None and lp.content is not None
    assert len(lp.content) == r.usage.completion_tokens
    for entry in lp.content:
        assert len(entry.top_logprobs) == 2
        assert abs(entry.logprob - entry.top_logprobs[0].logprob) < 1e-4  # greedy: the best
    streamed: list[Any] = []
    for chunk in _chat(client, model, logprobs=True, max_tokens=6, stream=True):
        for c in chunk.choices:
            streamed += (c.logprobs.content or []) if c.logprobs else []
    assert [e.token for e in streamed] == [e.token for e in lp.content]
    assert all(e.top_logprobs == [] for e in streamed)  # logprobs without top_logprobs
    t = client.completions.create(model=model, prompt="Once", max_tokens=5, logprobs=2)
    tlp = t.choices[0].logprobs
    assert tlp is not None and len(tlp.token_logprobs or []) == t.usage.completion_tokens
    assert all(1 <= len(top) <= 3 for top in tlp.top_logprobs or [])


@pytest.mark.parametrize("variant", VARIANTS)
@cell("openai", "seed")
def test_seed(client: openai.OpenAI, served: str, variant: str) -> None:
    model = _model(served, variant)

    def sample(seed: int) -> str:
        out = _chat(client, model, temperature=1.0, seed=seed, max_tokens=8)
        return str(out.choices[0].message.content)

    assert sample(123) == sample(123)
    assert sample(0) == sample(0)  # MAX alone reads seed 0 as "no seed"
    assert len({sample(123), sample(124), sample(0)}) == 3


@pytest.mark.parametrize("variant", VARIANTS)
@cell("openai", "tools")
def test_tools(client: openai.OpenAI, served: str, variant: str) -> None:
    if variant == "bare":
        r = _chat(client, served, tools=[LOOKUP], tool_choice="required", max_tokens=60)
        expected = "lookup"
    else:
        r = _chat(client, f"{served}/tool", tools=[LOOKUP], max_tokens=20)
        expected = "get_weather"
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.function.name == expected and isinstance(json.loads(call.function.arguments), dict)


class Pet(pydantic.BaseModel):
    name: str = pydantic.Field(max_length=8)
    age: int = pydantic.Field(ge=0, le=20)
    likes_walks: bool


@pytest.mark.parametrize("variant", VARIANTS)
@cell("openai", "chat.completions.parse")
def test_parse(client: openai.OpenAI, served: str, variant: str) -> None:
    r = client.chat.completions.parse(
        model=_model(served, variant), messages=MSG, response_format=Pet, max_tokens=200
    )
    assert isinstance(r.choices[0].message.parsed, Pet), r


@pytest.mark.parametrize("variant", VARIANTS)
@cell("openai", "echo (completions)")
def test_echo(client: openai.OpenAI, served: str, variant: str) -> None:
    model = _model(served, variant)
    kw: dict[str, Any] = {"prompt": "Once upon", "max_tokens": 5, "temperature": 0}
    plain = client.completions.create(model=model, **kw).choices[0].text
    echoed = client.completions.create(model=model, echo=True, **kw).choices[0].text
    assert echoed == "Once upon" + plain
    texts, _ = _stream_text(
        client.completions.create(model=model, echo=True, stream=True, **kw), chat=False
    )
    assert texts[0] == echoed
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model=model, echo=True, logprobs=1, **kw)
    assert "echo" in str(err.value)


BAD = [
    ({"temperature": 5}, "temperature", "decimal_above_max_value"),
    ({"top_p": 2}, "top_p", "decimal_above_max_value"),
    ({"max_tokens": -1}, "max_tokens", "integer_below_min_value"),
    ({"n": 0}, "n", "integer_below_min_value"),
    ({"presence_penalty": -3}, "presence_penalty", "decimal_below_min_value"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length"),
    ({"logprobs": True, "top_logprobs": 30}, "top_logprobs", "integer_above_max_value"),
    ({"logit_bias": {"5": 10}}, "logit_bias", "unsupported_parameter"),
]


@pytest.mark.parametrize("variant", VARIANTS)
@cell("openai", "errors")
def test_errors(server: ServerProcess, client: openai.OpenAI, served: str, variant: str) -> None:
    model = _model(served, variant)
    for kwargs, param, code in BAD:
        with pytest.raises(openai.BadRequestError) as err:
            _chat(client, model, **kwargs)
        body: Any = err.value.body
        assert (body["param"], body["code"]) == (param, code), body
        assert param in body["message"] and "Value error" not in body["message"]
    with pytest.raises(openai.NotFoundError) as missing:
        _chat(client, "gpt-4o" if variant == "bare" else f"{served}/no-such-mod")
    assert missing.value.code == "model_not_found"
    assert server.healthy()


def test_report() -> None:
    """Print the client matrix (every client module that ran in this session)."""
    print("\n" + table())
