# SPDX-License-Identifier: Apache-2.0
"""The original SDK's Flow, SelfPrompt and strategy options on the real engine (tiny model, CPU).

``Until(start_tag=...)``, a per-position ``ListOf``, ``self_prompt_mod`` with a dict
completion, and two flows in one engine with a per-request state, a backtracking
``Callback`` and a ``summary_builder``: each output must satisfy its contract for several
seeds at temperature 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from quote.hot.state import RequestOptions
from quote.pipelines.local import LocalEngine, Request
from quote.sdk import ActionBuilder, tokenize
from quote.sdk.flow import Callback, Flow, Question, Summary, flow_mod
from quote.sdk.selfprompt import self_prompt_mod
from quote.sdk.strategies import Chars, Choices, ListOf, Regex, Until, constrain

pytestmark = pytest.mark.integration
SEEDS = range(4)


@pytest.fixture(scope="module")
def engine(pipeline_factory: Any) -> LocalEngine:
    return LocalEngine(pipeline_factory("default"))


def _texts(engine: LocalEngine, definition: Any, n: int = 48) -> list[tuple[str, Any]]:
    tok = engine.loaded.hf_tokenizer
    prompt = [int(t) for t in tok.encode("Answer:")]
    reqs = [
        Request(prompt, n, temperature=1.0, seed=s, options=RequestOptions(mods=[definition]))
        for s in SEEDS
    ]
    out = []
    for r in engine.generate(reqs):
        assert r.error is None, r.error
        out.append((tok.decode(r.tokens, skip_special_tokens=True), r))
    return out


def test_until_with_a_start_tag(engine: LocalEngine) -> None:
    strategy = Until("</q>", max_chars=20, start_tag="<q>")
    for text, _ in _texts(engine, constrain(strategy)):
        assert text.startswith("<q>") and len(text) - 3 <= 20, text
        assert "</q>" not in text[3:-4]
        assert strategy.parse(text) == text[3:].removesuffix("</q>")


def test_list_with_a_strategy_per_position(engine: LocalEngine) -> None:
    strategy = ListOf([Choices(["red", "blue"]), Chars("numeric", 2), Regex("[a-z]{1,4}")])
    for text, _ in _texts(engine, constrain(strategy)):
        colour, number, word = strategy.parse(text)
        assert colour in ("red", "blue") and re.fullmatch("[0-9]{1,2}", number), text
        assert re.fullmatch("[a-z]{1,4}", word) and text == f"[{colour}, {number}, {word}]"


def test_self_prompt_mod_with_a_dict_completion(engine: LocalEngine) -> None:
    answers: list[Any] = []
    definition = self_prompt_mod(
        {"text": "\nMood? "},
        Choices(["happy", "sad"]),
        completion={"suffix": ".\n"},
        erase="prompt",
        on_answer=answers.append,
    )
    texts = [text for text, _ in _texts(engine, definition)]
    # One answer per request (the batch may finish them in any order), each one kept with its
    # suffix at the start of its completion, the question erased.
    starts = [a for text in texts for a in ("happy", "sad") if text.startswith(f"{a}.\n")]
    assert len(starts) == len(texts) and sorted(starts) == sorted(answers), texts
    assert not any("Mood?" in text for text in texts)


@dataclass
class Order:
    request_id: str
    answers: dict[str, Any] = field(default_factory=dict)
    erased: list[int] = field(default_factory=list)


def test_two_flows_state_backtrack_and_summary(engine: LocalEngine) -> None:
    """The first flow asks, then a Callback backtracks its question and answer away; the
    second flow asks again and ends with the summary its builder writes from the state."""

    def erase(actions: ActionBuilder, state: Order, tokenizer: Any) -> Any:
        n = len(tokenize(" size? ", tokenizer)) + len(tokenize(state.answers["size"], tokenizer))
        state.erased.append(n)
        return actions.backtrack(n)

    size = Question("size", " size? ", Choices(["small", "large"])).then(Callback(erase))
    colour = Question("colour", " colour? ", Choices(["red", "blue"])).then(Summary())
    colours = Flow(
        colour,
        name="colours",
        summary_builder=lambda s: f" => {s.answers['size']}/{s.answers['colour']}",
    )
    definition = flow_mod([Flow(size, name="size"), colours], state_factory=Order)
    for text, result in _texts(engine, definition):
        m = re.fullmatch(r" colour\? (red|blue) => (small|large)/(red|blue)", text)
        assert m is not None and m[1] == m[3], text
        assert result.finish_reason == "stop"
