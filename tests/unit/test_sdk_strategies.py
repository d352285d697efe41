# SPDX-License-Identifier: Apache-2.0
"""Strategies on a real byte-level BPE tokenizer, with property-based tests."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk_tokenizer import bpe_tokenizer

from quote.sdk import ActionBuilder, AdjustedLogits, ForwardPass
from quote.sdk.strategies import (
    SPARSE_LIMIT,
    Chars,
    Choices,
    ListOf,
    OneToken,
    PatternError,
    Regex,
    Strategy,
    StrategyError,
    StrategyRunner,
    Until,
    UntilAny,
    constrain,
    mask_action,
)
from quote.sdk.testing import RunResult, ScriptedModel, char_tokenizer, run_mod
from quote.sdk.tokens import token_table

pytestmark = pytest.mark.unit

TOK = bpe_tokenizer()
V = len(TOK)
EOS = TOK.eos_token_id
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORDS = ["yes", "no", "yes please", "maybe", "Paris", "London", " red", "blue green", "42", "{}"]


def run(strategy: Strategy, seed: int, max_tokens: int = 48, prompt: str = "Q:") -> RunResult:
    return run_mod(
        constrain(strategy),
        TOK,
        ScriptedModel.random(V, seed),
        prompt=prompt,
        max_tokens=max_tokens,
        temperature=1.0,
        seed=seed,
    ).raise_for_error()


def test_token_table_is_cached_and_multi_char() -> None:
    table = token_table(TOK)
    assert token_table(TOK) is table
    assert table.texts[EOS] is None
    multi = [i for i, t in enumerate(table.texts) if t and len(t) > 1]
    assert len(multi) > 100
    for i in multi[:50]:
        assert TOK.decode([i]) == table.texts[i]
    assert int(table.lengths.max()) > 3


@pytest.mark.parametrize("end_first", [True, False])
def test_prefix_choice_stays_reachable(end_first: bool) -> None:
    """Regression: a choice that is a prefix of another hid the longer one (and vice versa)."""
    longer = TOK.encode(" please", add_special_tokens=False)[0]
    order = [EOS, longer] if end_first else [longer, EOS]
    model = ScriptedModel.preferring(V, order)
    r = run_mod(constrain(Choices(["yes", "yes please"])), TOK, model, max_tokens=10)
    assert r.text == ("yes" if end_first else "yes please")
    assert r.finish_reason == "stop"


@FAST
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=5, unique=True), st.integers(0, 999))
def test_choices_complete_to_a_choice(choices: list[str], seed: int) -> None:
    r = run(Choices(choices), seed)
    assert r.text in choices


def test_choices_force_unique_paths() -> None:
    runner = StrategyRunner(Choices(["blue green"]), TOK)
    action = runner.forward(ForwardPass("r", 0, np.zeros(V, np.float32)), _builder())
    assert action.tokens == tuple(TOK.encode("blue green", add_special_tokens=False))  # type: ignore[union-attr]


def _builder() -> ActionBuilder:
    return ActionBuilder(ForwardPass("r", 0, np.zeros(V, np.float32)))


def test_chars_int_stop_is_a_max_length() -> None:
    """Regression: CharsStrat crashed on an integer stop."""
    for seed in range(5):
        r = run(Chars("alpha", 5), seed)
        assert re.fullmatch("[A-Za-z]{1,5}", r.text), r.text
    with pytest.raises(TypeError):
        Chars("alpha", 2.5)  # type: ignore[arg-type]


@FAST
@given(
    st.sampled_from(["numeric", "alpha", "alphanumeric"]), st.integers(1, 12), st.integers(0, 999)
)
def test_chars_classes(kind: str, n: int, seed: int) -> None:
    cls = {"numeric": "[0-9]", "alpha": "[A-Za-z]", "alphanumeric": "[A-Za-z0-9]"}[kind]
    r = run(Chars(kind, n), seed)
    assert re.fullmatch(f"{cls}{{1,{n}}}", r.text), r.text


@FAST
@given(st.integers(0, 10_000), st.sampled_from([None, 6]))
def test_json_number(seed: int, cap: int | None) -> None:
    r = run(Chars("json_number", cap), seed)
    assert re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?", r.text), r.text
    assert isinstance(json.loads(r.text), int | float)
    if cap:
        assert len(r.text) <= cap


def test_string_chars_stop_at_unescaped_quote() -> None:
    for seed in range(6):
        r = run(Chars("string", '"'), seed, max_tokens=200)
        assert isinstance(json.loads('"' + r.text), str), r.text


PATTERNS = [
    r"[0-9]{3}-[a-z]+",
    r"(cat|dog|bird)s?",
    r"\((yes|no)\) [A-Z][a-z]{0,4}",
    r"[a-f0-9]{2,8}",
    r"(ab|a)(bc|c)d?",
]


@FAST
@given(st.sampled_from(PATTERNS), st.integers(0, 10_000))
def test_regex_outputs_match(pattern: str, seed: int) -> None:
    r = run(Regex(pattern), seed, max_tokens=64)
    assert re.fullmatch(pattern, r.text), (pattern, r.text)


def test_regex_uses_multi_char_tokens() -> None:
    table = token_table(TOK)
    used = [t for s in range(10) for t in run(Regex("[a-z ]{1,40}"), s).completion_tokens]
    assert any((table.texts[t] or "") and len(table.texts[t] or "") > 1 for t in used)


def test_bad_pattern() -> None:
    with pytest.raises(PatternError):
        Regex("(unclosed").start(TOK)


@FAST
@given(
    st.integers(0, 3),
    st.integers(0, 3),
    st.booleans(),
    st.integers(0, 10_000),
)
def test_lists_parse(lo: int, extra: int, wrap: bool, seed: int) -> None:
    """Regression: lists without wrap never completed."""
    hi = lo + extra
    item = Chars("alpha", 6)
    strat = ListOf(item, wrap='"' if wrap else "", min_items=lo, max_items=max(hi, 1))
    r = run(strat, seed, max_tokens=120)
    assert r.finish_reason == "stop", r.text
    if wrap:
        items = json.loads(r.text)
    else:
        body = r.text[1:-1]
        items = body.split(", ") if body else []
    assert lo <= len(items) <= max(hi, 1)
    assert all(re.fullmatch("[A-Za-z]{1,6}", x) for x in items)
    assert strat.parse(r.text) == items


def test_list_of_choices_with_end_with() -> None:
    strat = ListOf(Choices(["red", "blue"]), wrap='"', min_items=1, max_items=2, end_with="\n")
    for seed in range(5):
        r = run(strat, seed)
        assert r.text.endswith("\n") and set(json.loads(r.text)) <= {"red", "blue"}


def test_until_tag_and_cap() -> None:
    for text in ("it is Paris</a> and more", "x</a></a>", "</a>"):
        model = ScriptedModel.text(TOK, text)
        r = run_mod(constrain(Until("</a>")), TOK, model, max_tokens=40).raise_for_error()
        assert r.text == text[: text.index("</a>") + 4]
    for seed in range(5):
        r = run(Until("</a>", max_chars=12), seed)
        assert len(r.text) <= 12
    state = Until("!").start(TOK)
    for t in TOK.encode("hi!", add_special_tokens=False):
        state.advance(t)
    assert state.finished and state.value() == "hi"


def test_until_any_char() -> None:
    for seed in range(5):
        r = run(UntilAny(".!?", max_chars=200), seed, max_tokens=300)
        assert len(r.text) <= 200
        assert sum(r.text.count(c) for c in ".!?") <= 1


def test_one_token() -> None:
    a, b = (TOK.encode(x, add_special_tokens=False)[0] for x in ("a", "b"))
    for seed in range(4):
        r = run(OneToken(["a", b]), seed)
        assert r.completion_tokens[:-1] in ([a], [b])
    with pytest.raises(StrategyError):
        OneToken(["blue green"]).start(TOK)


def test_large_masks_use_a_packed_bitmask() -> None:
    """Beyond SPARSE_LIMIT ids a mask is an allow_bitmask; the logits are never read."""
    logits = np.random.default_rng(0).standard_normal(5000).astype(np.float32)
    event = ForwardPass("r", 0, lambda: pytest.fail("the mask read the logits"))  # type: ignore[arg-type,return-value]
    builder = ActionBuilder(event)
    ids = np.arange(0, 5000, 2, dtype=np.int64)
    big = mask_action(builder, event, ids)
    small = mask_action(builder, event, ids[:10])
    assert isinstance(big, AdjustedLogits) and big.allow_bitmask is not None
    assert big.logits is None and big.allow is None and ids.size > SPARSE_LIMIT
    assert isinstance(small, AdjustedLogits) and small.allow == tuple(ids[:10].tolist())
    expected = np.full(5000, -np.inf, dtype=np.float32)
    expected[ids] = logits[ids]
    assert np.array_equal(big.apply(logits), expected)


def test_needs_an_end_token_without_eos() -> None:
    tok = char_tokenizer("abc")
    tok.eos_token_id = None
    tok.all_special_ids = []
    runner = StrategyRunner(Choices(["a", "ab"]), tok, end_token=None)
    runner.added([tok.encode("a")[0]])
    event = ForwardPass("r", 0, np.zeros(len(tok), np.float32))
    with pytest.raises(StrategyError, match="end token"):
        runner.forward(event, ActionBuilder(event))


def test_advance_rejects_bad_tokens() -> None:
    state: Any = Regex("[0-9]+").start(TOK)
    with pytest.raises(StrategyError):
        state.advance(TOK.encode("x", add_special_tokens=False)[0])


def test_states_are_not_shared() -> None:
    """Regression: a per-instance list was shared across instances."""
    strategy = ListOf(Chars("alpha", 3), max_items=2)
    a, b = strategy.start(TOK), strategy.start(TOK)
    a.advance(TOK.encode("[", add_special_tokens=False)[0])
    assert a.tokens != b.tokens and b.tokens == [] and b.text == ""
    r1, r2 = StrategyRunner(Choices(["x", "y"]), TOK), StrategyRunner(Choices(["x", "y"]), TOK)
    r1.added([TOK.encode("x", add_special_tokens=False)[0]])
    assert r1.value() == "x" and r2.value() is None and r2.state.tokens == []
