# SPDX-License-Identifier: Apache-2.0
"""The demo mods (quote/examples/demos) on the real engine (tiny Gemma3, CPU): mechanics only."""

from __future__ import annotations

from typing import Any

import pytest
from json_oracle import check_json

from quote.examples.demos.mods import DEMOS, GREETING, REPORT, tokens_containing
from quote.examples.demos.run import WEATHER_TOOL, demo_requests
from quote.hot.state import RequestOptions
from quote.pipelines.local import LocalEngine, Request
from quote.sdk import ActionBuilder, Added, Conversation, Event, mod, tokenize

pytestmark = pytest.mark.integration

N = 16


@pytest.fixture(scope="module")
def engine(pipeline_factory: Any) -> LocalEngine:
    return LocalEngine(pipeline_factory("default"))


@pytest.fixture(scope="module")
def tok(engine: LocalEngine) -> Any:
    return engine.loaded.hf_tokenizer


@pytest.fixture(scope="module")
def prompt(tok: Any) -> list[int]:
    return [int(t) for t in tok.encode("Tell me about the engine.")]


def req(prompt: list[int], n: int = N, **options: Any) -> Request:
    return Request(prompt, n, ignore_eos=True, options=RequestOptions(**options))


def test_greeting_tokens_come_first(engine: LocalEngine, tok: Any, prompt: list[int]) -> None:
    (r,) = engine.generate([req(prompt, mods=[DEMOS["greeting"]])])
    g = tokenize(GREETING, tok)
    assert r.tokens[: len(g)] == g and len(r.tokens) == N
    assert tok.decode(r.tokens).startswith(GREETING)


def test_banned_tokens_never_appear(engine: LocalEngine, tok: Any, prompt: list[int]) -> None:
    banned = set(tokens_containing(tok))
    seeds = range(4)
    base = engine.generate(
        [Request(prompt, 32, temperature=1.0, seed=s, ignore_eos=True) for s in seeds]
    )
    modded = engine.generate(
        [
            Request(
                prompt,
                32,
                temperature=1.0,
                seed=s,
                ignore_eos=True,
                options=RequestOptions(mods=[DEMOS["no_letter_e"]]),
            )
            for s in seeds
        ]
    )
    assert any(banned & set(b.tokens) for b in base)  # without the mod, "e" tokens do come
    for r in modded:
        assert not banned & set(r.tokens) and len(r.tokens) == 32
        assert "e" not in tok.decode(r.tokens, skip_special_tokens=True).lower()


def _force_at(step: int, text: str) -> Any:
    @mod(name="force_phrase")
    def force_phrase(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        if isinstance(event, Added) and event.step == step and not event.forced:
            return actions.force_tokens(tokenize(text, tokenizer))
        return None

    return force_phrase


@pytest.mark.parametrize("stream", [False, True])
def test_phrase_replaced_by_backtracking(
    engine: LocalEngine, tok: Any, prompt: list[int], stream: bool
) -> None:
    """The phrase is forced (deterministic trigger); it never survives, the replacement does."""
    mods = [_force_at(2, " in the cloud"), DEMOS["replace_phrase"]]
    args = {"phrase": "cloud", "replacement": "server"}
    (plain,) = engine.generate([req(prompt, mods=mods[:1])])
    (r,) = engine.generate([req(prompt, mods=mods, args=args, stream=stream, trace=True)])
    assert "cloud" in tok.decode(plain.tokens)
    text = tok.decode(r.tokens)
    assert r.error is None and "cloud" not in text and " in the server" in text
    assert r.tokens[:3] == plain.tokens[:3] and len(r.tokens) == N
    actions = [e.get("action", "") for e in r.trace["entries"]]
    assert any("Backtrack" in str(a) for a in actions)


def test_stop_early_with_forced_output(engine: LocalEngine, tok: Any, prompt: list[int]) -> None:
    (base,) = engine.generate([req(prompt, 30)])
    (r,) = engine.generate([req(prompt, 30, mods=[DEMOS["stop_early"]], args={"limit": 5})])
    assert r.finish_reason == "stop" and r.error is None
    suffix = tokenize(" [end]", tok)
    assert r.tokens == base.tokens[:5] + suffix
    assert tok.decode(r.tokens).endswith(" [end]")


def test_tool_call_then_answer_from_result(
    engine: LocalEngine, prompt: list[int], tok: Any
) -> None:
    ask = {"role": "user", "content": "What is the weather in Paris?"}
    conv = Conversation(messages=[ask], tools=[WEATHER_TOOL])
    (r,) = engine.generate([req(prompt, mods=[DEMOS["weather_tool"]], conversation=conv)])
    assert r.finish_reason == "tool_calls" and r.tokens == []
    assert r.tool_calls == [
        {"id": "call_weather_0", "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
    call = {
        "id": "call_weather_0",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    turn2 = Conversation(
        messages=[
            ask,
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_weather_0", "content": "sunny, 21 C"},
        ],
        tools=[WEATHER_TOOL],
    )
    (r2,) = engine.generate([req(prompt, mods=[DEMOS["weather_tool"]], conversation=turn2)])
    assert r2.finish_reason == "stop" and tok.decode(r2.tokens) == "The weather: sunny, 21 C"
    # Without the tool in the request the mod stays out of the way.
    (r3,) = engine.generate(
        [req(prompt, mods=[DEMOS["weather_tool"]], conversation=Conversation(messages=[ask]))]
    )
    assert r3.finish_reason == "length" and len(r3.tokens) == N


def test_rewritten_prompt_gives_the_rewritten_output(
    engine: LocalEngine, tok: Any, prompt: list[int]
) -> None:
    prefix = "Answer briefly:\n"
    rewritten = prompt[:1] + tokenize(prefix, tok) + prompt[1:]
    (ref,) = engine.generate([req(rewritten)])
    (base,) = engine.generate([req(prompt)])
    (r,) = engine.generate([req(prompt, mods=[DEMOS["rewrite_prompt"]], args={"prefix": prefix})])
    assert r.tokens == ref.tokens and r.tokens != base.tokens
    assert r.final_sequence[: len(rewritten)] == rewritten


@pytest.mark.parametrize("stream", [False, True])
def test_json_report_is_valid_json(
    engine: LocalEngine, tok: Any, prompt: list[int], stream: bool
) -> None:
    """The strategy demo: every sampled answer validates against REPORT, ended by EOS."""
    options = RequestOptions(mods=[DEMOS["json_report"]], stream=stream)
    reqs = [Request(prompt, 64, temperature=1.0, seed=s, options=options) for s in range(4)]
    for r in engine.generate(reqs):
        assert r.error is None and r.finish_reason == "stop", r.error
        assert r.tokens[-1] == tok.eos_token_id
        check_json(tok.decode(r.tokens, skip_special_tokens=True), REPORT)


def test_demo_requests_all_run(engine: LocalEngine, tok: Any) -> None:
    """The in-process script's requests all finish without error."""
    for name, (text, options) in demo_requests(tok).items():
        (r,) = engine.generate([Request([int(t) for t in tok.encode(text)], 12, options=options)])
        assert r.error is None, (name, r.error)
