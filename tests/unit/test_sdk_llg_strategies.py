# SPDX-License-Identifier: Apache-2.0
"""The llguidance strategies on the tiny tokenizer: masks, forced tokens, rollback, errors."""

from __future__ import annotations

import re
import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk_tokenizer import bpe_tokenizer

from quote.sdk import ActionBuilder, Added, AdjustedLogits, Backtrack, ForceTokens, ForwardPass
from quote.sdk.strategies import (
    Chars,
    Choices,
    Grammar,
    GrammarError,
    GrammarTimeout,
    JsonSchema,
    ListOf,
    PatternError,
    Regex,
    Strategy,
    StrategyError,
    StrategyRunner,
    Until,
    UntilAny,
    constrain,
)
from quote.sdk.strategies import masks as mask_module
from quote.sdk.testing import ScriptedModel, char_tokenizer, run_mod
from quote.sdk.tokens import token_table

pytestmark = pytest.mark.unit

TOK = bpe_tokenizer()
V = len(TOK)
EOS = TOK.eos_token_id
TEXTS = token_table(TOK).texts
FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def enc(text: str) -> list[int]:
    return [int(t) for t in TOK.encode(text, add_special_tokens=False)]


def forward(runner: StrategyRunner) -> Any:
    event = ForwardPass("r", 0, lambda: pytest.fail("a strategy read the logits"))  # type: ignore[arg-type,return-value]
    return runner.forward(event, ActionBuilder(event))


# Each case: a strategy, a prefix of an answer, and a Python regex of every prefix of an answer.
MASK_CASES = [
    (Regex("[0-9]{3}-[a-z]+"), "12", r"[0-9]{0,3}|[0-9]{3}-[a-z]*"),
    (Regex("(cat|dog)s?", max_chars=4), "ca", r"|c|ca|cat|cats|d|do|dog|dogs"),
    (Until("</a>"), "x <", r"(?s:(?:(?!</a>).)*(?:<|</|</a?|</a>)?)"),
    (UntilAny(".!", max_chars=6), "ab", r"[^.!]{0,6}|[^.!]{0,5}[.!]"),
    (Chars("alpha", 4), "a", r"[A-Za-z]{0,4}"),
    (
        ListOf(Choices(["x", "yz"]), max_items=2),
        "[x",
        r"|\[|\[(x|y|yz)?|\[(x|yz)(, ?|, (x|y|yz))?|\[(x|yz)?\]|\[(x|yz), (x|yz)\]",
    ),
]


@pytest.mark.parametrize(("strategy", "prefix", "prefixes"), MASK_CASES)
def test_mask_is_exactly_the_tokens_that_keep_an_answer_possible(
    strategy: Strategy, prefix: str, prefixes: str
) -> None:
    runner = StrategyRunner(strategy, TOK)
    runner.added(enc(prefix))
    oracle = re.compile(prefixes)
    expected = {i for i, t in enumerate(TEXTS) if t and oracle.fullmatch(prefix + t)}
    allowed = set(runner.state.allowed().tolist())
    assert {i for i in allowed if TEXTS[i]} == expected
    # The rest are byte tokens (pieces of a multi-byte character), never special ones.
    assert all(not TOK.convert_ids_to_tokens(i).startswith("<") for i in allowed - expected)
    assert EOS not in allowed and runner.state.text == prefix


def test_end_token_joins_the_mask_only_when_the_answer_may_end() -> None:
    runner = StrategyRunner(Regex("[0-9]{1,3}"), TOK)
    first = forward(runner)
    assert isinstance(first, AdjustedLogits) and first.allow is not None and EOS not in first.allow
    runner.added(enc("12"))
    after = forward(runner)
    assert isinstance(after, AdjustedLogits) and after.allow is not None and EOS in after.allow
    assert runner.sampled(EOS) and runner.done and runner.value() == "12"


def test_large_masks_travel_packed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past SPARSE_LIMIT tokens the mask is the packed bitmask, end token included."""
    monkeypatch.setattr(mask_module, "SPARSE_LIMIT", 16)
    runner = StrategyRunner(Chars("string", min_chars=0), TOK)
    assert runner.state.complete
    action = forward(runner)
    assert isinstance(action, AdjustedLogits) and action.allow is None
    assert action.allow_bitmask is not None and action.logits is None
    kept = np.flatnonzero(action.apply(np.zeros(V, dtype=np.float32)) == 0).tolist()
    assert kept == sorted([*runner.state.allowed().tolist(), EOS])


def test_forced_text_comes_in_one_chunk() -> None:
    strategy = Regex("hello world [0-9]+")
    forced = StrategyRunner(strategy, TOK).state.forced()
    assert len(forced) > 1 and "hello world".startswith(TOK.decode(forced)[:11])
    r = run_mod(constrain(strategy), TOK, ScriptedModel.random(V, 1), max_tokens=30)
    first = [e.action for e in r.trace if isinstance(e.event, ForwardPass)][0]
    assert isinstance(first, ForceTokens) and list(first.tokens) == forced
    assert re.fullmatch("hello world [0-9]+", r.raise_for_error().text)


def test_forced_text_follows_a_sample_in_the_same_step() -> None:
    """After the model closes a string, the next key is forced at Added: no extra step."""
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "maxLength": 3}, "b": {"type": "boolean"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    }
    r = run_mod(constrain(JsonSchema(schema)), TOK, ScriptedModel.text(TOK, '{"a":"xy","b":true}'))
    assert r.raise_for_error().text == '{"a":"xy","b":true}'
    at_added = [e for e in r.trace if isinstance(e.event, Added) and not e.event.forced]
    assert any(isinstance(e.action, ForceTokens) for e in at_added)
    assert r.steps < len(r.completion_tokens)


ROLLBACK = [
    JsonSchema({"type": "array", "items": {"type": "integer"}, "maxItems": 4}),
    Regex("[a-z]{1,8}(-[0-9]{1,3})?"),
    Until("!!", max_chars=20),
    Choices(["red", "green", "greenish", "blue"]),
    ListOf(Chars("alpha", 3), wrap='"', max_items=3),
]


@FAST
@given(st.sampled_from(ROLLBACK), st.integers(0, 10_000), st.integers(1, 12))
def test_rollback_returns_to_the_earlier_state(strategy: Strategy, seed: int, back: int) -> None:
    rng = np.random.default_rng(seed)
    runner = StrategyRunner(strategy, TOK)
    seen: list[tuple[list[int], bool, list[int], str]] = []
    while not runner.done and len(seen) < 12:
        state = runner.state
        seen.append((state.allowed().tolist(), state.complete, state.forced(), state.text))
        ids = state.forced()[:1] or [int(rng.choice(state.allowed()))]
        runner.added(ids)
    back = min(back, len(runner.state.tokens))
    assert runner.backtrack(back) == back
    state = runner.state
    want = seen[len(state.tokens)] if len(state.tokens) < len(seen) else None
    if want is not None:
        assert (state.allowed().tolist(), state.complete, state.forced(), state.text) == want
    assert not runner.done or back == 0


def test_backtrack_counts_tokens_after_the_answer_first() -> None:
    runner = StrategyRunner(Choices(["yes", "no"]), TOK)
    runner.added(enc("no"))
    assert runner.done and runner.value() == "no"
    runner.added([EOS])  # the end token entered after the answer
    assert runner.backtrack(1) == 0 and runner.value() == "no"
    assert runner.backtrack(1) == len(enc("no")) and runner.value() is None and not runner.done


def test_a_mod_that_backtracks_keeps_its_matcher_in_step() -> None:
    """Take back three tokens once, mid-answer: the answer is still valid JSON."""
    from quote.sdk import Mod

    schema = {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 99},
        "minItems": 3,
    }

    class Second(Mod):
        def on_start(self, request: Any) -> None:
            self.runner: StrategyRunner | None = None
            self.undone = False

        def handle(self, event: Any, actions: Any, tokenizer: Any) -> Any:
            self.runner = self.runner or StrategyRunner(JsonSchema(schema), tokenizer)
            if isinstance(event, ForwardPass):
                if self.runner.done:
                    return actions.force_tokens([tokenizer.eos_token_id])
                return self.runner.forward(event, actions)
            if isinstance(event, Added):
                self.runner.added(event.tokens)
                if not self.undone and len(self.runner.state.tokens) >= 4:
                    self.undone = True
                    self.runner.backtrack(3)
                    return actions.backtrack(3)
            return None

    for seed in range(4):
        r = run_mod(Second, TOK, ScriptedModel.random(V, seed), max_tokens=60, temperature=1.0)
        assert r.raise_for_error().finish_reason == "stop", r.text
        assert any(isinstance(e.action, Backtrack) for e in r.trace)
        value = JsonSchema(schema).parse(r.text)
        assert isinstance(value, list) and all(0 <= v <= 99 for v in value)


def test_until_finishes_at_the_first_tag() -> None:
    state = Until("!").start(TOK)
    for t in enc("hi!"):
        state.advance(t)
    assert state.finished and state.value() == "hi"
    with pytest.raises(StrategyError, match="after the answer finished"):
        state.advance(enc("x")[0])


def test_a_token_outside_the_grammar_is_refused_without_breaking_it() -> None:
    state = Regex("[0-9]+").start(TOK)
    with pytest.raises(StrategyError, match="does not fit"):
        state.advance(enc("x")[0])
    state.advance(enc("7")[0])
    assert state.complete and state.value() == "7"


def test_grammar_strategy() -> None:
    g = Grammar('start: "say " WORD "!"\nWORD: /[a-z]{1,5}/')
    for seed in range(4):
        r = run_mod(constrain(g), TOK, ScriptedModel.random(V, seed), temperature=1.0, seed=seed)
        assert re.fullmatch("say [a-z]{1,5}!", r.raise_for_error().text), r.text


def test_char_tokenizer_and_no_eos() -> None:
    tok = char_tokenizer("abc")
    tok.eos_token_id = None
    tok.all_special_ids = []
    r = run_mod(constrain(Regex("ab+c"), end_token=None), tok, ScriptedModel.random(4, 0))
    assert re.fullmatch("ab+c", r.raise_for_error().text) and r.finish_reason == "stop"


@pytest.mark.parametrize(
    ("build", "error", "named"),
    [
        (lambda: Regex("(unclosed"), PatternError, "(unclosed"),
        (lambda: Regex("a(?=b)"), PatternError, "look-around"),
        (lambda: Until("x", max_chars=-1), ValueError, "max_chars"),
        (lambda: Grammar("start: missing_rule"), GrammarError, "missing_rule"),
        (lambda: Grammar("start: 'a' |"), GrammarError, "Grammar"),
        (lambda: JsonSchema({"type": "object", "not": {}}), GrammarError, "not"),
    ],
)
def test_errors_name_what_is_wrong(build: Any, error: type[Exception], named: str) -> None:
    with pytest.raises(error) as info:
        build()
    assert named in str(info.value)


def test_compile_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compile past the strategy's budget raises; the same schema compiles afterwards.

    The compile is held back by an event (a real one is far faster than any budget a test
    could wait on, so a tiny budget raced the compile thread and lost when it finished first).
    """
    from quote.sdk import grammar

    class Slow(JsonSchema):
        budget_s = 0.05

    release = threading.Event()
    first_mask = grammar._first_mask

    def held(*args: Any) -> str:
        release.wait(10)
        return first_mask(*args)

    # a schema no other test compiles: strategies cache grammars per tokenizer
    schema = {
        "title": "test_compile_budget",
        "type": "array",
        "items": {"type": "string", "format": "date-time"},
    }
    monkeypatch.setattr(grammar, "_first_mask", held)
    try:
        with pytest.raises(GrammarTimeout, match="did not compile within 0.05 s"):
            Slow(schema).start(char_tokenizer())
    finally:
        release.set()
    monkeypatch.undo()
    assert isinstance(JsonSchema(schema).start(char_tokenizer()).allowed(), np.ndarray)
