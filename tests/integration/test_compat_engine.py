# SPDX-License-Identifier: Apache-2.0
"""Mods written for the original engine (``quote_mod_sdk``) on the real engine (tiny model, CPU).

The original-shaped mods of ``tests/legacy_mods.py`` (one per event x action)
run unchanged through the compatibility layer and must produce their forced
text, backtracks, tool calls and errors; a greedy run without mods is the
reference. Mods that react to generated text are paired with a Quote mod that
steers the model (an allow-list, so the text is sampled, not forced) into
writing the trigger.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quote.hot.state import RequestOptions
from quote.mods.registry import ModRegistry
from quote.pipelines.local import LocalEngine, Request, Result
from quote.sdk import ForwardPass, Mod, Sampled, as_definition
from quote.sdk.compat import QuoteModSDKDeprecationWarning

with warnings.catch_warnings():
    warnings.simplefilter("ignore", QuoteModSDKDeprecationWarning)
    import legacy_mods as L

pytestmark = pytest.mark.integration
PROMPT = "Tell me a story."
N = 14


@pytest.fixture(scope="module")
def engine(pipeline_factory: Any) -> LocalEngine:
    return LocalEngine(pipeline_factory("default"))


def _enc(engine: LocalEngine, text: str) -> list[int]:
    return [int(t) for t in engine.loaded.hf_tokenizer.encode(text, add_special_tokens=False)]


def _run(engine: LocalEngine, mods: list[Any], prompt: str = PROMPT, n: int = N) -> Result:
    [result] = engine.generate(
        [Request(_enc(engine, prompt), n, options=RequestOptions(mods=mods))]
    )
    return result


def _text(engine: LocalEngine, tokens: list[int]) -> str:
    return str(engine.loaded.hf_tokenizer.decode(tokens))


class Steer(Mod):
    """Quote mod: the model must sample ``script`` first (allow-list), then runs free."""

    def __init__(self, script: list[int]) -> None:
        self.script, self.i = script, 0

    def handle(self, event: Any, actions: Any, tokenizer: Any) -> Any:
        if isinstance(event, ForwardPass) and self.i < len(self.script):
            return actions.adjust_logits(allow=[self.script[self.i]])
        if isinstance(event, Sampled):
            self.i += 1
        return None


def _steer(engine: LocalEngine, text: str) -> Any:
    script = _enc(engine, text)
    return as_definition(type("steer", (Steer,), {"__init__": lambda s: Steer.__init__(s, script)}))


class Rows(Mod):
    """Quote mod recording each step's raw logits row (class attribute: one request at a time)."""

    rows: list[np.ndarray] = []

    def handle(self, event: Any, actions: Any, tokenizer: Any) -> None:
        if isinstance(event, ForwardPass):
            Rows.rows.append(np.array(event.logits))


@pytest.fixture(scope="module")
def baseline(engine: LocalEngine) -> list[int]:
    return _run(engine, []).tokens


def test_noop_mods_of_every_event_change_nothing(engine: LocalEngine, baseline: list[int]) -> None:
    mods = [L.prefilled_noop, L.forward_pass_noop, L.added_noop, L.sampled_noop]
    result = _run(engine, mods)
    assert result.error is None and result.tokens == baseline


def test_prefilled_actions(engine: LocalEngine) -> None:
    goodbye = _run(engine, [], "Say goodbye to me.")
    adjusted = _run(engine, [L.prefilled_adjust_prefill], "Say hello to me.")
    assert adjusted.tokens == goodbye.tokens
    assert adjusted.final_sequence[: len(_enc(engine, "Say goodbye to me."))] == _enc(
        engine, "Say goodbye to me."
    )
    forced = _run(engine, [L.prefilled_force_output], "This is an emergency!")
    assert (forced.finish_reason, _text(engine, forced.tokens)) == (
        "stop",
        "EMERGENCY PROTOCOL ACTIVATED.",
    )
    tools = _run(engine, [L.prefilled_tool_calls], "What's the weather like?")
    assert tools.finish_reason == "tool_calls" and tools.tokens == []
    [call] = tools.tool_calls or []
    assert (call["name"], call["arguments"]) == ("get_weather", '{"location": "New York"}')
    assert str(call["id"]).startswith("call_")
    error = _run(engine, [L.prefilled_emit_error])
    assert error.finish_reason == "error" and "refused: prompt blocked" in str(error.error)


def test_forward_pass_actions(engine: LocalEngine, baseline: list[int]) -> None:
    injected = _enc(engine, " [INJECTED]")
    assert _run(engine, [L.forward_pass_force_tokens]).tokens[: len(injected)] == injected
    marker = _enc(engine, " [BACKTRACKED]")
    back = _run(engine, [L.forward_pass_backtrack], n=24)
    assert back.tokens[:3] == baseline[:3]  # 5 sampled, 2 taken back, then the marker
    assert back.tokens[3 : 3 + len(marker)] == marker
    ended = _run(engine, [L.forward_pass_force_output])
    assert (ended.finish_reason, _text(engine, ended.tokens)) == ("stop", " [END]")
    tools = _run(engine, [L.forward_pass_tool_calls])
    assert tools.finish_reason == "tool_calls" and tools.tokens == []
    assert [c["name"] for c in tools.tool_calls or []] == ["calculator"]


def test_adjust_logits_with_the_original_2d_copy(engine: LocalEngine) -> None:
    Rows.rows = []
    result = _run(engine, [as_definition(Rows), L.forward_pass_adjust_logits], n=6)
    assert result.error is None and len(result.tokens) == 6
    for row, token in zip(Rows.rows, result.tokens, strict=True):
        banned = set(np.argsort(-row)[:3].tolist())
        row = row.copy()
        row[list(banned)] = -np.inf
        assert token == int(np.argmax(row))


def test_adjust_logits_with_a_max_tensor(engine: LocalEngine, baseline: list[int]) -> None:
    """The original's documented ``actions.adjust_logits(Tensor.from_numpy(logits))``.

    MAX 26.7 names the tensor ``max.driver.Buffer`` (``max.driver.Tensor`` is gone, so
    the original's import line fails and is the one line to change, as the guide says).
    """
    from max.driver import Buffer

    from quote_mod_sdk import ForwardPass as LegacyForwardPass
    from quote_mod_sdk import mod

    first = baseline[0]
    with pytest.warns(QuoteModSDKDeprecationWarning):

        @mod
        def ban_first(event, actions, tokenizer):
            if isinstance(event, LegacyForwardPass):
                logits = event.logits.to_numpy().copy()
                logits[0, first] = -np.inf
                return actions.adjust_logits(Buffer.from_numpy(logits))
            return actions.noop()

    Rows.rows = []
    result = _run(engine, [as_definition(Rows), ban_first], n=4)
    assert first not in result.tokens
    row = Rows.rows[0].copy()
    row[first] = -np.inf
    assert result.tokens[0] == int(np.argmax(row))


@pytest.mark.parametrize(
    ("name", "script", "expected"),
    [
        ("added_force_tokens", "hello", "hello world"),
        ("added_backtrack", "bad phrase", "good phrase"),
    ],
)
def test_added_rewrites(engine: LocalEngine, name: str, script: str, expected: str) -> None:
    result = _run(engine, [_steer(engine, script), getattr(L, name)], n=20)
    assert result.error is None
    assert _text(engine, result.tokens).startswith(expected)


def test_added_ends(engine: LocalEngine) -> None:
    stopped = _run(engine, [_steer(engine, "a stop word"), L.added_force_output])
    assert (stopped.finish_reason, _text(engine, stopped.tokens)) == ("stop", " [STOPPED]")
    tools = _run(engine, [_steer(engine, "I search for"), L.added_tool_calls])
    assert tools.finish_reason == "tool_calls"
    [call] = tools.tool_calls or []
    assert (call["name"], call["arguments"]) == ("search", '{"query": "test query"}')


def test_sampled_actions(engine: LocalEngine, baseline: list[int]) -> None:
    observed = _enc(engine, " [OBSERVED]")
    assert _run(engine, [L.sampled_force_tokens]).tokens[: len(observed)] == observed
    resampled = _enc(engine, " [RESAMPLED]")
    back = _run(engine, [L.sampled_backtrack], n=20)
    assert back.tokens[: 1 + len(resampled)] == baseline[:1] + resampled
    ended = _run(engine, [L.sampled_force_output])
    assert (ended.finish_reason, _text(engine, ended.tokens)) == ("stop", " [SAMPLED_END]")
    tools = _run(engine, [L.sampled_tool_calls])
    assert tools.finish_reason == "tool_calls"
    assert tools.tool_calls == [
        {"id": "call_db", "name": "query_database", "arguments": {"table": "users"}}
    ]


def test_other_handler_forms(engine: LocalEngine) -> None:
    assert _run(engine, [L.two_argument_handler]).tokens[:2] == [40, 41]
    with pytest.warns(QuoteModSDKDeprecationWarning):
        bare = as_definition(L.bare_callable)
    marker = _enc(engine, " [BARE]")
    assert _run(engine, [bare]).tokens[: len(marker)] == marker


def test_registered_original_source_runs(engine: LocalEngine, tmp_path: Path) -> None:
    """An original-style module registered as source loads through the registry and runs."""
    source = (
        "from quote_mod_sdk import mod, Sampled\n\n"
        "@mod\n"
        "def m(event, actions, tokenizer):\n"
        "    if isinstance(event, Sampled) and event.step == 0:\n"
        "        return actions.force_output(tokenizer.encode('ok', add_special_tokens=False))\n"
        "    return actions.noop()\n"
    )
    registry = ModRegistry(tmp_path)
    registry.write("legacy", {"main.py": source}, "main:m", "original-style")
    with pytest.warns(QuoteModSDKDeprecationWarning):
        definition = registry.load("legacy")
    result = _run(engine, [definition])
    assert (result.finish_reason, _text(engine, result.tokens)) == ("stop", "ok")
