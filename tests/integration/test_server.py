# SPDX-License-Identifier: Apache-2.0
"""The real server (`quote serve` subprocess, tiny model, CPU) driven by the `openai` client."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from server_proc import Server, openai_client, register_mod

pytestmark = pytest.mark.integration

KEY = "test-admin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}

MODS = """
from quote.sdk import mod, Prefilled, Added, ForwardPass

@mod
def hello(event, actions, tokenizer):
    if isinstance(event, Prefilled):
        return actions.force_tokens(tokenizer.encode("HELLO ", add_special_tokens=False))

@mod
def tool(event, actions, tokenizer):
    if isinstance(event, Added) and event.step >= 2:
        return actions.tool_calls([{"name": "get_weather", "arguments": {"city": "Paris"}}])

@mod
def refuse(event, actions, tokenizer):
    if isinstance(event, Added) and event.step >= 1:
        return actions.emit_error("policy says no")

@mod
def crash(event, actions, tokenizer):
    if isinstance(event, ForwardPass) and event.step == 1:
        raise RuntimeError("bug in mod")

@mod
def fixed(event, actions, tokenizer):
    if isinstance(event, Prefilled):
        return actions.force_output(tokenizer.encode("done.", add_special_tokens=False))

@mod
def args_echo(event, actions, tokenizer):
    from quote.sdk import get_request, get_conversation
    if isinstance(event, Prefilled):
        word = str(get_request().mod_args.get("word", "none"))
        n = len(get_conversation().messages)
        return actions.force_output(tokenizer.encode(f"{word}:{n}", add_special_tokens=False))
"""


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    d = tmp_path_factory.mktemp("server")
    srv = Server(tiny_model, d / "mods", d / "server.log", QUOTE_ADMIN_KEY=KEY)
    try:
        srv.wait_ready()
        for name in ("hello", "tool", "refuse", "crash", "fixed", "args_echo"):
            register_mod(srv, KEY, name.replace("_", "-"), MODS, name)
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    return openai_client(server)


@pytest.fixture(scope="module")
def served(client: openai.OpenAI) -> str:
    return client.models.list().data[0].id


def chat(client: openai.OpenAI, model: str, **kw: Any) -> Any:
    kw.setdefault("messages", [{"role": "user", "content": "hi"}])
    kw.setdefault("max_tokens", 8)
    kw.setdefault("temperature", 0)
    return client.chat.completions.create(model=model, **kw)


def test_models_lists_mods(client: openai.OpenAI, served: str) -> None:
    ids = {m.id for m in client.models.list().data}
    assert {served, f"{served}/hello", f"{served}/tool", f"{served}/args-echo"} <= ids


def test_plain_and_modded_chat(client: openai.OpenAI, served: str) -> None:
    plain = chat(client, served)
    again = chat(client, served)
    assert (
        plain.choices[0].message.content == again.choices[0].message.content
    )  # temperature 0 is greedy
    r = chat(client, f"{served}/hello", max_tokens=10)
    assert r.choices[0].message.content.startswith("HELLO ")
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 10
    assert r.usage.prompt_tokens == plain.usage.prompt_tokens


def test_streaming_with_mod(client: openai.OpenAI, served: str) -> None:
    whole = chat(client, f"{served}/hello", max_tokens=10).choices[0].message.content
    stream = chat(client, f"{served}/hello", max_tokens=10, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == whole


def test_text_completions_with_mod(client: openai.OpenAI, served: str) -> None:
    r = client.completions.create(
        model=f"{served}/hello", prompt="Once upon", max_tokens=6, temperature=0
    )
    assert r.choices[0].text.startswith("HELLO ") and r.choices[0].finish_reason == "length"


def test_tool_calls(client: openai.OpenAI, served: str) -> None:
    r = chat(client, f"{served}/tool", max_tokens=12)
    assert r.choices[0].finish_reason == "tool_calls"
    (call,) = r.choices[0].message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    deltas, reasons = [], []
    for c in chat(client, f"{served}/tool", max_tokens=12, stream=True):
        if c.choices:
            deltas += c.choices[0].delta.tool_calls or []
            reasons.append(c.choices[0].finish_reason)
    assert [d.function.name for d in deltas] == ["get_weather"] and reasons[-1] == "tool_calls"


def test_forced_output_and_args(client: openai.OpenAI, served: str) -> None:
    r = chat(client, f"{served}/fixed", max_tokens=20)
    assert r.choices[0].message.content == "done." and r.choices[0].finish_reason == "stop"
    r = chat(
        client,
        f"{served}/args-echo",
        messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        extra_body={"chat_template_kwargs": {"quote": {"args": {"word": "zebra"}}}},
    )
    assert r.choices[0].message.content == "zebra:2"
    t = client.completions.create(
        model=f"{served}/args-echo",
        prompt="x",
        max_tokens=5,
        extra_body={"quote": {"args": {"word": "q"}}},
    )
    assert t.choices[0].text == "q:0"


def test_trace_opt_in(client: openai.OpenAI, served: str) -> None:
    r = chat(client, f"{served}/hello", extra_body={"quote": {"trace": True}})
    trace = (r.model_extra or {})["quote"]["trace"]
    assert {"Prefilled", "ForwardPass"} <= {e.get("event") for e in trace["entries"]}
    assert "quote" not in (chat(client, f"{served}/hello").model_extra or {})


def test_mod_errors(client: openai.OpenAI, served: str, server: Server) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, f"{served}/refuse")
    assert "refuse" in str(e.value) and "policy says no" in str(e.value)
    with pytest.raises(openai.UnprocessableEntityError) as e2:
        chat(client, f"{served}/crash")
    assert "crash" in str(e2.value) and "bug in mod" in str(e2.value)
    # Streaming: an error event, then [DONE].
    with httpx.stream(
        "POST",
        server.base + "/v1/chat/completions",
        json={
            "model": f"{served}/refuse",
            "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 8,
            "stream": True,
        },
        timeout=60,
    ) as resp:
        events = [ln[len("data: ") :] for ln in resp.iter_lines() if ln.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert "policy says no" in json.loads(events[-2])["error"]["message"]
    with pytest.raises(openai.NotFoundError) as e3:
        chat(client, f"{served}/no-such-mod")
    assert "no-such-mod" in str(e3.value)
    assert server.healthy() and chat(client, served).choices[0].message.content


def test_registry_crud_and_auth(server: Server, client: openai.OpenAI, served: str) -> None:
    b = server.base
    src = "from quote.sdk import mod\n@mod\ndef m(e, a, t):\n    return None\n"
    assert (
        httpx.post(
            b + "/v1/mods", json={"name": "x1", "source": src, "entrypoint": "m"}
        ).status_code
        == 401
    )
    assert (
        httpx.post(
            b + "/v1/mods",
            json={"name": "x1", "source": src, "entrypoint": "m"},
            headers={"Authorization": "Bearer nope"},
        ).status_code
        == 403
    )
    r = httpx.post(
        b + "/v1/mods",
        json={
            "name": "x1",
            "source": {
                "pkg/__init__.py": "",
                "pkg/impl.py": src,
                "entry.py": "from .pkg.impl import m\n",
            },
            "entrypoint": "entry:m",
            "description": "d",
        },
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    assert httpx.get(b + "/v1/mods/x1").json()["description"] == "d"
    assert "x1" in {m["name"] for m in httpx.get(b + "/v1/mods").json()["data"]}
    assert (
        chat(client, f"{served}/x1").choices[0].message.content
        == chat(client, served).choices[0].message.content
    )
    # Replace: takes effect on the next request, without a restart.
    new = (
        MODS
        + "\n@mod\ndef m(e, a, t):\n    from quote.sdk import Prefilled\n    if isinstance(e, Prefilled):\n        return a.force_output(t.encode('v2', add_special_tokens=False))\n"
    )
    r = httpx.post(
        b + "/v1/mods", json={"name": "x1", "source": new, "entrypoint": "m"}, headers=AUTH
    )
    assert r.status_code == 200, r.text
    assert chat(client, f"{served}/x1").choices[0].message.content == "v2"
    assert httpx.delete(b + "/v1/mods/x1", headers=AUTH).status_code == 204
    assert httpx.delete(b + "/v1/mods/x1", headers=AUTH).status_code == 404
    assert httpx.get(b + "/v1/mods/x1").status_code == 404


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        (b"{not json", 400, "JSON"),
        (
            json.dumps({"name": "../evil", "source": "x=1", "entrypoint": "x"}).encode(),
            400,
            "invalid mod name",
        ),
        (
            json.dumps({"name": "ok", "source": {"../x.py": "x=1"}, "entrypoint": "x:x"}).encode(),
            400,
            "invalid source path",
        ),
        (
            json.dumps(
                {"name": "ok", "source": {"/abs.py": "x=1"}, "entrypoint": "abs:x"}
            ).encode(),
            400,
            "invalid source path",
        ),
        (
            json.dumps({"name": "ok", "source": "def f(:\n", "entrypoint": "f"}).encode(),
            400,
            "SyntaxError",
        ),
        (
            json.dumps({"name": "ok", "source": "x = 1\n", "entrypoint": "missing"}).encode(),
            400,
            "no attribute",
        ),
        (
            json.dumps(
                {"name": "ok", "source": "raise SystemExit(3)\n", "entrypoint": "f"}
            ).encode(),
            400,
            "rejected",
        ),
        (
            json.dumps({"name": "ok", "source": "x=1", "entrypoint": "x", "extra": 1}).encode(),
            400,
            "Extra inputs",
        ),
        (
            json.dumps({"name": "ok", "source": "#" * 300_000, "entrypoint": "x"}).encode(),
            413,
            "exceeds",
        ),
    ],
)
def test_registry_rejects_bad_input(
    server: Server, payload: bytes, status: int, needle: str
) -> None:
    r = httpx.post(
        server.base + "/v1/mods",
        content=payload,
        headers={**AUTH, "content-type": "application/json"},
    )
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]
    assert httpx.get(server.base + "/v1/mods/ok").status_code == 404
    assert server.healthy()


@pytest.mark.parametrize(
    "body",
    [
        b"{broken",
        json.dumps(
            {"model": "x", "messages": [{"role": "user", "content": "hi"}], "bogus_field": 1}
        ).encode(),
        json.dumps(
            {"messages": [{"role": "user", "content": "hi"}], "model": "nope-model"}
        ).encode(),
    ],
)
def test_bad_completion_requests_are_4xx(server: Server, body: bytes) -> None:
    r = httpx.post(
        server.base + "/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert 400 <= r.status_code < 500, r.text
    assert server.healthy()


def test_bad_quote_options_are_400(client: openai.OpenAI, served: str) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, f"{served}/hello", extra_body={"quote": {"nope": 1}})
    assert "unknown 'quote' option" in str(e.value)


def test_restart_persistence_registry_off_and_reload(
    tiny_model: Path, tmp_path: Path, server: Server
) -> None:
    """A second server on the same mods dir without QUOTE_ADMIN_KEY: mods persist, writes are off.

    It also runs with --reload semantics (QUOTE_RELOAD) on a copy of execute_impl, edited live.
    """
    import quote.hot.execute_impl as impl

    mods_dir = tmp_path / "mods"
    shutil.copytree(Path(server.log).parent / "mods", mods_dir)
    impl_copy = tmp_path / "execute_impl.py"
    shutil.copy(impl.__file__, impl_copy)
    srv = Server(
        tiny_model,
        mods_dir,
        tmp_path / "s2.log",
        QUOTE_RELOAD="1",
        QUOTE_EXECUTE_IMPL=str(impl_copy),
    )
    try:
        srv.wait_ready()
        c = openai_client(srv)
        served = c.models.list().data[0].id
        assert chat(c, f"{served}/fixed").choices[0].message.content == "done."
        r = httpx.post(
            srv.base + "/v1/mods",
            json={"name": "z", "source": "x=1", "entrypoint": "x"},
            headers=AUTH,
        )
        assert r.status_code == 403 and "disabled" in r.json()["error"]["message"]
        assert httpx.delete(srv.base + "/v1/mods/fixed", headers=AUTH).status_code == 403
        # A broken edit keeps the server up; a working edit is picked up at the next step.
        impl_copy.write_text("def execute(:\n")
        assert chat(c, f"{served}/hello").choices[0].message.content.startswith("HELLO ")
        src = impl.__loader__.get_source(impl.__name__)  # type: ignore[union-attr]
        assert src is not None
        impl_copy.write_text(src.replace("MAX_EDIT_ROUNDS = 64", "MAX_EDIT_ROUNDS = 0"))
        with pytest.raises(openai.UnprocessableEntityError) as e:
            chat(c, f"{served}/hello")
        assert "0 rounds" in str(e.value)
        assert srv.healthy()
    finally:
        assert srv.stop() in (0, -15, 143)


def test_sampling_parameters_with_and_without_mods(client: openai.OpenAI, served: str) -> None:
    for model in (served, f"{served}/hello"):
        a = chat(client, model, temperature=1.0, seed=7, max_tokens=10)
        b = chat(client, model, temperature=1.0, seed=7, max_tokens=10)
        assert a.choices[0].message.content == b.choices[0].message.content  # seed reproduces
        full = chat(client, model, max_tokens=10).choices[0].message.content
        stop = full[len("HELLO ") + 2 : len("HELLO ") + 4] if model.endswith("hello") else full[3:5]
        cut = chat(client, model, max_tokens=10, stop=[stop])
        assert cut.choices[0].finish_reason == "stop"
        assert stop not in cut.choices[0].message.content and full.startswith(
            cut.choices[0].message.content
        )
        r = chat(client, model, max_completion_tokens=3)
        assert r.usage.completion_tokens == 3 and r.choices[0].finish_reason == "length"
