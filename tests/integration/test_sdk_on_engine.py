# SPDX-License-Identifier: Apache-2.0
"""SDK features exercised end to end on the real engine (tiny model, CPU, sampling).

Strategies (choices, regex, characters, lists, one-token), SelfPrompt, the Flow
engine with a tool route, the conversation helpers and mod_log: each one's
output on the real pipeline must satisfy its contract, for several seeds.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from quote.hot.state import RequestOptions
from quote.pipelines.local import LocalEngine, Request
from quote.sdk import Conversation, Prefilled, get_conversation, mod, mod_log
from quote.sdk.flow import CallTool, Flow, Output, Question, flow_mod
from quote.sdk.strategies import Chars, Choices, ListOf, OneToken, Regex, constrain

pytestmark = pytest.mark.integration
SEEDS = range(4)


@pytest.fixture(scope="module")
def engine(pipeline_factory: Any) -> LocalEngine:
    return LocalEngine(pipeline_factory("default"))


def _texts(engine: LocalEngine, definition: Any, n: int = 48, **opts: Any) -> list[tuple[str, Any]]:
    tok = engine.loaded.hf_tokenizer
    prompt = [int(t) for t in tok.encode("Answer:")]
    reqs = [
        Request(
            prompt, n, temperature=1.0, seed=s, options=RequestOptions(mods=[definition], **opts)
        )
        for s in SEEDS
    ]
    out = []
    for r in engine.generate(reqs):
        assert r.error is None, r.error
        out.append((tok.decode(r.tokens, skip_special_tokens=True), r))
    return out


def test_choices_include_prefix_choices(engine: LocalEngine) -> None:
    choices = ["yes", "yes please", "no", "maybe later"]
    for text, _ in _texts(engine, constrain(Choices(choices))):
        assert text in choices


@pytest.mark.parametrize(
    ("strategy", "check"),
    [
        (Regex(r"[0-9]{2,4}-[a-z]{1,3}"), lambda t: re.fullmatch(r"[0-9]{2,4}-[a-z]{1,3}", t)),
        (Chars("json_number", 8), lambda t: isinstance(json.loads(t), int | float)),
        (Chars("alpha", 6), lambda t: t.isalpha() and len(t) <= 6),
        (
            ListOf(
                Choices(["a", "b", "c"]),
                open="[",
                close="]",
                sep=",",
                wrap='"',
                min_items=1,
                max_items=3,
            ),
            lambda t: 1 <= len(json.loads(t)) <= 3,
        ),
    ],
    ids=["regex", "json-number", "alpha", "list"],
)
def test_strategy_outputs_match(engine: LocalEngine, strategy: Any, check: Any) -> None:
    for text, _ in _texts(engine, constrain(strategy)):
        assert check(text), text


def test_one_token(engine: LocalEngine) -> None:
    for _, r in _texts(engine, constrain(OneToken([100, 200, 300]), end_token=None)):
        assert r.tokens[0] in (100, 200, 300)


def test_flow_routes_to_tool_call_or_output(engine: LocalEngine) -> None:
    size = Question("size", " size? ", Choices(["small", "large"]))
    size.on("large", CallTool("order", {"size": "{size}"})).otherwise(Output("ok {size}"))
    seen = set()
    for text, r in _texts(engine, flow_mod(Flow(size)), n=64):
        if r.finish_reason == "tool_calls":
            assert r.tool_calls and r.tool_calls[0]["name"] == "order"
            seen.add("tool")
        else:
            assert text == "ok small", text
            seen.add("output")
    assert seen  # both routes are legal; at least one ran with a real model


def test_conversation_and_logs_reach_only_their_request(engine: LocalEngine) -> None:
    @mod
    def echo(event: Any, actions: Any, tokenizer: Any) -> Any:
        if isinstance(event, Prefilled):
            conv = get_conversation()
            mod_log("messages=%d", len(conv.messages))
            word = conv.messages[-1]["content"] if conv.messages else "none"
            return actions.force_output(tokenizer.encode(word, add_special_tokens=False))
        return None

    tok = engine.loaded.hf_tokenizer
    reqs = [
        Request(
            [2, 5],
            8,
            options=RequestOptions(
                mods=[echo],
                trace=True,
                conversation=Conversation(messages=[{"role": "user", "content": w}]),
            ),
        )
        for w in ("alpha", "beta")
    ]
    a, b = engine.generate(reqs)
    assert tok.decode(a.tokens) == "alpha" and tok.decode(b.tokens) == "beta"
    assert a.trace is not None and a.trace["mod_logs"] == ["messages=1"]


def test_serialized_mod_runs_on_the_engine(engine: LocalEngine, tmp_path: Path) -> None:
    """A mod packaged with serialize_mod and loaded with load_mod behaves like the original.

    The demo module is copied out of the ``quote`` package first: serialize_mod packages a
    user's own modules (the server provides ``quote``).
    """
    from quote.examples.demos import mods as shipped
    from quote.sdk.serialize import load_mod, serialize_mod

    copy = tmp_path / "demo_mods.py"
    copy.write_text(Path(shipped.__file__).read_text())
    spec = importlib.util.spec_from_file_location("demo_mods", copy)
    assert spec is not None and spec.loader is not None
    demos = importlib.util.module_from_spec(spec)
    sys.modules["demo_mods"] = demos
    try:
        spec.loader.exec_module(demos)
        original = demos.greeting
        loaded = load_mod(serialize_mod(original))
    finally:
        sys.modules.pop("demo_mods", None)
    tok = engine.loaded.hf_tokenizer
    prompt = [int(t) for t in tok.encode("Hi")]
    a, b = engine.generate(
        [Request(prompt, 10, options=RequestOptions(mods=[m])) for m in (original, loaded)]
    )
    assert a.error is None and a.tokens == b.tokens and tok.decode(a.tokens).startswith("Hello")
