# SPDX-License-Identifier: Apache-2.0
"""SelfPrompt: prompt, constrained answer, completion suffix, erase modes, greedy, auto answers."""

from __future__ import annotations

from typing import Any

import pytest
from sdk_tokenizer import bpe_tokenizer

from quote.sdk import ActionBuilder, AdjustedLogits, Event, ForwardPass, Mod
from quote.sdk.selfprompt import SelfPrompt, SelfPromptRun
from quote.sdk.strategies import Chars, Choices
from quote.sdk.testing import RunResult, ScriptedModel, run_mod

pytestmark = pytest.mark.unit

TOK = bpe_tokenizer()
V = len(TOK)
EOS = TOK.eos_token_id


def ids(text: str) -> list[int]:
    return list(TOK.encode(text, add_special_tokens=False))


def ask(
    spec: SelfPrompt, model: ScriptedModel, auto: str | None = None, **kw: Any
) -> tuple[RunResult, list[Any]]:
    answers: list[Any] = []

    class Ask(Mod):
        def __init__(self) -> None:
            self.run: SelfPromptRun | None = None

        def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
            if self.run is None:
                self.run = spec.begin(tokenizer, auto)
                return self.run.start(event, actions)
            if self.run.active:
                action = self.run.handle(event, actions)
                if self.run.done:
                    answers.append(self.run.answer)
                return action
            if isinstance(event, ForwardPass):
                return actions.force_tokens([EOS])
            return None

    result = run_mod(Ask, TOK, model, prompt="Story:", max_tokens=40, **kw).raise_for_error()
    return result, answers


NO = ScriptedModel.preferring(V, [ids("no")[0], EOS])


@pytest.mark.parametrize(
    ("erase", "text"),
    [("none", "Q? no!\n"), ("prompt", "no!\n"), ("all", "")],
)
def test_erase_modes_keep_the_completion(erase: str, text: str) -> None:
    """Regression: self_prompt silently ignored its completion argument."""
    spec = SelfPrompt("Q? ", Choices(["yes", "no"]), completion="!\n", erase=erase)  # type: ignore[arg-type]
    result, answers = ask(spec, NO)
    assert answers == ["no"]
    assert result.text == text and result.finish_reason == "stop"


def test_answer_ended_by_eos_without_suffix() -> None:
    spec = SelfPrompt(" n=", Chars("numeric"))
    digits = ScriptedModel.stream(V, ids(" n=") + ids("42"), then=EOS)
    result, answers = ask(spec, digits)
    assert answers == ["42"] and result.text == " n=42"
    assert result.completion_tokens.count(EOS) == 1  # only the final forced EOS


def test_greedy_sends_temperature_zero() -> None:
    spec = SelfPrompt("Q? ", Choices(["yes", "no", "maybe"]), greedy=True)
    result, answers = ask(spec, NO, temperature=50.0, seed=3)
    temps = [e.action.temperature for e in result.trace if isinstance(e.action, AdjustedLogits)]
    assert temps and all(t == 0.0 for t in temps)
    assert answers == ["no"]


def test_auto_answer_skips_the_model() -> None:
    spec = SelfPrompt("Q? ", Choices(["yes", "no"]), completion=".", erase="prompt")
    result, answers = ask(spec, NO, auto="yes")
    assert answers == ["yes"] and result.text == "yes."
    assert not [e for e in result.trace if isinstance(e.action, AdjustedLogits)]


def test_invalid_erase() -> None:
    with pytest.raises(ValueError):
        SelfPrompt("x", Choices(["a"]), erase="some")  # type: ignore[arg-type]
