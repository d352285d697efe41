# SPDX-License-Identifier: Apache-2.0
"""The offline harness follows the engine's event/action contract."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from quote.sdk import ActionBuilder, Added, Event, ForwardPass, Prefilled, Sampled, mod
from quote.sdk.testing import ScriptedModel, char_tokenizer, run_mod

pytestmark = pytest.mark.unit

TOK = char_tokenizer("abcdefghij")
A, B, C = (TOK.encode(c)[0] for c in "abc")
EOS = TOK.eos_token_id
PREFER_A = ScriptedModel.preferring(len(TOK), [A])


def test_event_sequence() -> None:
    @mod
    def noop(event: Event, actions: ActionBuilder, tokenizer: Any) -> None:
        return None

    r = run_mod(noop, TOK, PREFER_A, prompt="bc", max_tokens=3)
    assert r.completion_tokens == [A, A, A] and r.finish_reason == "length"
    kinds = [type(e).__name__ for e in r.events()]
    assert kinds[0] == "Prefilled" and kinds.count("Prefilled") == 1
    assert kinds[1:4] == ["ForwardPass", "Sampled", "Added"]
    steps = [e.step for e in r.events(ForwardPass)]
    assert steps == [0, 1, 2]
    fp = r.events(ForwardPass)[0]
    assert isinstance(fp, ForwardPass) and fp.logits.shape == (len(TOK),)


def test_force_replaces_sample_and_follows_added() -> None:
    @mod
    def forcer(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        if isinstance(event, ForwardPass) and event.step == 0:
            return actions.force_tokens([B, B])
        if isinstance(event, Added) and not event.forced:
            return actions.force_tokens([C])
        return None

    r = run_mod(forcer, TOK, PREFER_A, prompt="a", max_tokens=5)
    assert r.completion_tokens == [B, B, A, C, A]
    sampled_steps = [e.step for e in r.events(Sampled)]
    assert 0 not in sampled_steps  # a forced step is not sampled
    added = [(e.tokens, e.forced) for e in r.events(Added)]
    assert added[:3] == [((B, B), True), ((A,), False), ((C,), True)]


def test_backtrack_and_prompt_protection() -> None:
    @mod
    def back(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        if isinstance(event, Sampled) and event.step == 2:
            return actions.backtrack(2, [C])
        return None

    r = run_mod(back, TOK, PREFER_A, prompt="b", max_tokens=4)
    assert r.completion_tokens == [C, A, A, A][: len(r.completion_tokens)]
    assert r.prompt_tokens == [B]

    @mod
    def too_far(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        if isinstance(event, ForwardPass) and event.step == 1:
            return actions.backtrack(2)
        return None

    r = run_mod(too_far, TOK, PREFER_A, prompt="bb", max_tokens=4)
    assert r.finish_reason == "error" and "prompt" in (r.error or "")


def test_terminal_actions() -> None:
    @mod
    def out(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        return actions.force_output([B, C]) if isinstance(event, Prefilled) else None

    @mod
    def tools(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        if isinstance(event, Added):
            return actions.tool_calls([{"name": "f", "arguments": {"a": 1}}])
        return None

    @mod
    def err(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        return actions.emit_error("bad") if isinstance(event, Sampled) else None

    r = run_mod([out, err], TOK, PREFER_A)
    assert (r.text, r.finish_reason) == ("bc", "stop")
    assert not [e for e in r.trace if e.mod == "err"]  # first terminal wins
    r = run_mod(tools, TOK, PREFER_A)
    assert r.finish_reason == "tool_calls" and r.tool_calls[0].name == "f"
    r = run_mod(err, TOK, PREFER_A)
    assert r.finish_reason == "error" and "bad" in (r.error or "")


def test_eos_in_forced_tokens_and_length() -> None:
    @mod
    def force_eos(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        if isinstance(event, ForwardPass):
            return actions.force_tokens([B, EOS, C])
        return None

    r = run_mod(force_eos, TOK, PREFER_A, max_tokens=10)
    assert r.completion_tokens == [B, EOS] and r.finish_reason == "stop" and r.text == "b"

    @mod
    def force_many(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        return actions.force_tokens([B] * 5) if isinstance(event, ForwardPass) else None

    r = run_mod(force_many, TOK, PREFER_A, max_tokens=7)
    assert len(r.completion_tokens) == 7 and r.finish_reason == "length"


def test_logit_edits_chain_and_greedy_temperature() -> None:
    @mod
    def ban_a(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        return actions.adjust_logits(ban=[A]) if isinstance(event, ForwardPass) else None

    @mod
    def greedy_bias_c(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        if isinstance(event, ForwardPass):
            return actions.adjust_logits(bias={C: 1e-3}, temperature=0.0)
        return None

    model = ScriptedModel(lambda seq, n: np.zeros(len(TOK), dtype=np.float32))
    r = run_mod([ban_a, greedy_bias_c], TOK, model, max_tokens=4, temperature=5.0, seed=1)
    assert r.completion_tokens == [C] * 4


def test_illegal_and_garbage_actions_fail_the_request() -> None:
    @mod
    def illegal(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        if isinstance(event, Sampled):
            from quote.sdk import AdjustedLogits

            return AdjustedLogits(allow=(1,))
        return None

    @mod
    def garbage(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        return "hello"

    r = run_mod(illegal, TOK, PREFER_A)
    assert r.finish_reason == "error"
    assert "illegal" in (r.error or "") and "AdjustedLogits" in (r.error or "")
    assert "Sampled" in (r.error or "")
    r = run_mod(garbage, TOK, PREFER_A)
    assert r.finish_reason == "error" and "not an action" in (r.error or "")

    @mod
    def out_of_vocab(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        return actions.force_tokens([10_000]) if isinstance(event, ForwardPass) else None

    r = run_mod(out_of_vocab, TOK, PREFER_A)
    assert r.finish_reason == "error" and "vocabulary" in (r.error or "")


def test_adjusted_prefill() -> None:
    @mod
    def replace(event: Event, actions: ActionBuilder, tokenizer: Any) -> Any:
        if isinstance(event, Prefilled):
            return actions.adjust_prefill([C, C], max_steps=2)
        return None

    r = run_mod(replace, TOK, PREFER_A, prompt="abc", max_tokens=9)
    assert r.prompt_tokens == [C, C] and len(r.completion_tokens) == 2
