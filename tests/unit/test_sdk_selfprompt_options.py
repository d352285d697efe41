# SPDX-License-Identifier: Apache-2.0
"""SelfPrompt options from the original SDK: dict prompts and completions, refresh_responses,
and ``self_prompt_mod``."""

from __future__ import annotations

from typing import Any

import pytest
from sdk_tokenizer import bpe_tokenizer

from quote.sdk import ActionBuilder, Event, ForwardPass, Mod
from quote.sdk.selfprompt import SelfPrompt, SelfPromptError, SelfPromptRun, self_prompt_mod
from quote.sdk.strategies import Chars, Choices, ListOf, Regex
from quote.sdk.testing import RunResult, ScriptedModel, run_mod

pytestmark = pytest.mark.unit

TOK = bpe_tokenizer()
V = len(TOK)
EOS = TOK.eos_token_id


def ids(text: str) -> list[int]:
    return [int(t) for t in TOK.encode(text, add_special_tokens=False)]


def prefer(*words: str) -> ScriptedModel:
    return ScriptedModel.preferring(V, [ids(w)[0] for w in words] + [EOS])


def ask(spec: SelfPrompt, model: ScriptedModel, **kw: Any) -> tuple[RunResult, list[Any]]:
    """Run ``spec`` once, then end the request with EOS; returns the result and answers."""
    answers: list[Any] = []
    prepare = kw.pop("prepare", None)

    class Ask(Mod):
        def __init__(self) -> None:
            self.run: SelfPromptRun | None = None

        def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
            if self.run is None:
                self.run = spec.begin(tokenizer)
                if prepare is not None:
                    prepare(self.run)
                return self.run.start(event, actions)
            if self.run.active:
                action = self.run.handle(event, actions)
                if self.run.done:
                    answers.append(self.run.answer)
                return action
            return actions.force_tokens([EOS]) if isinstance(event, ForwardPass) else None

    result = run_mod(Ask, TOK, model, prompt="Story:", max_tokens=40, **kw).raise_for_error()
    return result, answers


@pytest.mark.parametrize(
    ("completion", "text"),
    [
        ({"suffix": "!\n"}, "Q? no!\n"),
        ({"suffix": "!\n", "force": True}, "Q? no!\n"),
        ({"suffix": ids("!\n")}, "Q? no!\n"),
        ({"suffix": "!\n", "force": False}, "Q? no"),
        ({}, "Q? no"),
        (ids("!\n"), "Q? no!\n"),
    ],
)
def test_completion_as_a_dict_or_token_ids(completion: Any, text: str) -> None:
    spec = SelfPrompt("Q? ", Choices(["yes", "no"]), completion=completion)
    result, answers = ask(spec, prefer("no"))
    assert answers == ["no"] and result.text == text


@pytest.mark.parametrize("prompt", [{"text": "Q? "}, {"tokens": ids("Q? ")}, ids("Q? ")])
def test_prompt_as_a_dict_or_token_ids(prompt: Any) -> None:
    result, answers = ask(SelfPrompt(prompt, Choices(["yes", "no"])), prefer("yes"))
    assert answers == ["yes"] and result.text == "Q? yes"


@pytest.mark.parametrize(
    ("prompt", "completion", "error", "match"),
    [
        ("Q", {"sufix": "!"}, ValueError, "unknown completion key"),
        ({"txt": "Q"}, "", ValueError, "unknown prompt key"),
        ("Q", {"suffix": "!", "force": "yes"}, TypeError, "force must be a bool"),
        ("Q", {"suffix": 3}, TypeError, "completion suffix must be"),
        ({"tokens": ["a"]}, "", TypeError, "token ids"),
        (3, "", TypeError, "prompt must be"),
    ],
)
def test_bad_prompt_or_completion(prompt: Any, completion: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        SelfPrompt(prompt, Choices(["a"]), completion=completion)


def test_refresh_responses_gives_a_new_spec() -> None:
    base = SelfPrompt("Q? ", Choices(["yes", "no"]), completion="\n")
    fresh = base.refresh_responses(["red", "blue"])
    assert base.strategy == Choices(["yes", "no"]) and fresh.strategy == Choices(["red", "blue"])
    assert (fresh.prompt, fresh.completion) == ("Q? ", "\n")
    _, answers = ask(fresh, prefer("blue", "no"))
    assert answers == ["blue"]


def test_refresh_responses_of_a_list() -> None:
    pos = ListOf([Choices(["a", "b"]), Chars("numeric", 1)])
    spec = SelfPrompt("Q? ", pos).refresh_responses(["red", "blue"], idx=0)
    assert isinstance(spec.strategy, ListOf) and spec.strategy.positions == (
        Choices(["red", "blue"]),
        Chars("numeric", 1),
    )
    shared = SelfPrompt("Q? ", ListOf(Choices(["a"]))).refresh_responses(["x", "y"])
    assert isinstance(shared.strategy, ListOf) and shared.strategy.item == Choices(["x", "y"])


@pytest.mark.parametrize(
    ("strategy", "idx", "error", "match"),
    [
        (Regex("[a-z]+"), None, TypeError, "has no choices"),
        (Choices(["a"]), 0, TypeError, "idx is only for"),
        (ListOf([Choices(["a"]), Chars("numeric", 1)]), None, TypeError, "needs idx"),
        (ListOf([Choices(["a"]), Chars("numeric", 1)]), 1, TypeError, "not Choices"),
        (ListOf([Choices(["a"]), Chars("numeric", 1)]), 5, IndexError, "not one of 2"),
        (ListOf(Chars("alpha", 2)), None, TypeError, "has no choices"),
    ],
)
def test_refresh_responses_errors(strategy: Any, idx: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        SelfPrompt("Q? ", strategy).refresh_responses(["x"], idx)
    with pytest.raises(TypeError, match="list of strings"):
        SelfPrompt("Q? ", Choices(["a"])).refresh_responses("abc")


def test_a_run_refreshes_before_its_answer_starts() -> None:
    spec = SelfPrompt("Q? ", Choices(["yes", "no"]))
    _, answers = ask(
        spec, prefer("blue", "no"), prepare=lambda run: run.refresh_responses(["blue"])
    )
    assert answers == ["blue"]
    assert spec.strategy == Choices(["yes", "no"])  # the shared spec is untouched
    run = spec.begin(TOK)
    run.runner.added(ids("yes")[:1])
    with pytest.raises(SelfPromptError, match="has started"):
        run.refresh_responses(["x"])
    with pytest.raises(SelfPromptError, match="already given"):
        spec.begin(TOK, auto_answer="yes").refresh_responses(["x"])


def test_self_prompt_mod_asks_then_lets_the_model_continue() -> None:
    seen: list[Any] = []
    definition = self_prompt_mod(
        {"text": "\nMood? "},
        Choices(["happy", "sad"]),
        completion={"suffix": ".\n"},
        erase="prompt",
        on_answer=seen.append,
    )
    model = ScriptedModel.preferring(V, ids("sad")[:1] + ids("happy")[:1] + [EOS])
    r = run_mod(definition, TOK, model, prompt="Diary:", max_tokens=12).raise_for_error()
    assert seen == ["sad"]
    # After the answer the model is free: it writes its favourite token until max_tokens.
    free = r.completion_tokens[len(ids("sad.\n")) :]
    assert r.text.startswith("sad.\n") and free and set(free) == {ids("sad")[0]}
    assert "Mood?" not in r.text and r.finish_reason == "length"
    erased = self_prompt_mod("Mood? ", Choices(["happy", "sad"]), erase="all")
    r = run_mod(erased, TOK, model, prompt="Diary:", max_tokens=20)
    assert "Mood?" not in r.text and set(r.completion_tokens) == {ids("sad")[0]}
