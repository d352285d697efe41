# SPDX-License-Identifier: Apache-2.0
"""``Until``/``UntilAny`` with a forced start tag; ``ListOf`` with a strategy per position."""

from __future__ import annotations

import json
import re

import pytest
from sdk_tokenizer import bpe_tokenizer

from quote.sdk import ForceTokens
from quote.sdk.strategies import (
    Chars,
    Choices,
    ListOf,
    Regex,
    StrategyRunner,
    Until,
    UntilAny,
    constrain,
)
from quote.sdk.testing import RunResult, ScriptedModel, run_mod

pytestmark = pytest.mark.unit

TOK = bpe_tokenizer()
V = len(TOK)
EOS = TOK.eos_token_id


def enc(text: str) -> list[int]:
    return [int(t) for t in TOK.encode(text, add_special_tokens=False)]


def run(strategy: object, model: ScriptedModel, **kw: object) -> RunResult:
    kw.setdefault("max_tokens", 60)
    return run_mod(constrain(strategy), TOK, model, **kw)  # type: ignore[arg-type]


def test_until_forces_its_start_tag_even_when_the_model_wants_otherwise() -> None:
    """The model prefers "hello</q>" from the first position; the start tag comes first anyway."""
    strategy = Until("</q>", start_tag="<q>")
    r = run(strategy, ScriptedModel.preferring(V, enc("hello") + enc("</q>")[:1] + [EOS]))
    assert r.text.startswith("<q>"), r.text
    first = next(e.action for e in r.trace if isinstance(e.action, ForceTokens))
    assert TOK.decode(list(first.tokens)) in ("<q", "<q>")  # forced before any sample
    for text in ("<q>Where to?</q>", "<q></q>", "<q>a</q> trailing"):
        r = run(strategy, ScriptedModel.text(TOK, text)).raise_for_error()
        assert r.text == text[: text.index("</q>") + 4]
        assert strategy.parse(r.text) == text[3 : text.index("</q>")]


def test_until_start_tag_value_and_cap() -> None:
    """``max_chars`` counts the text after the start tag; the value drops both tags."""
    strategy = Until("</q>", max_chars=6, start_tag="<q>")
    for seed in range(6):
        r = run(strategy, ScriptedModel.random(V, seed), temperature=1.0, seed=seed)
        assert r.finish_reason == "stop", r.error
        body = r.text.removesuffix(TOK.decode([EOS]))
        assert body.startswith("<q>") and len(body) - 3 <= 6
        assert strategy.parse(body) == body[3:].removesuffix("</q>")
    state = Until("!", start_tag="Q: ").start(TOK)
    for t in enc("Q: hi!"):
        state.advance(t)
    assert state.finished and state.value() == "hi"
    assert Until("</a>", 12).max_chars == 12 and Until("</a>", 12).start_tag == ""


def test_until_any_start_tag() -> None:
    strategy = UntilAny(".!", max_chars=5, start_tag="A:")
    r = run(strategy, ScriptedModel.preferring(V, enc("xyz") + enc("!") + [EOS])).raise_for_error()
    assert r.text.startswith("A:") and re.fullmatch(r"A:[^.!]{0,5}[.!]?", r.text)
    assert strategy.parse(r.text) == r.text[2:].rstrip(".!")
    runner = StrategyRunner(strategy, TOK)
    assert TOK.decode(runner.state.forced()).startswith("A")


@pytest.mark.parametrize("bad", [None, 3])
def test_start_tag_must_be_text(bad: object) -> None:
    with pytest.raises(TypeError, match="start_tag"):
        Until("x", start_tag=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="start_tag"):
        UntilAny("x", start_tag=bad)  # type: ignore[arg-type]


POSITIONS = ListOf(
    [Choices(["red", "blue"]), Chars("numeric", 2), Regex("[a-z]{1,4}")], wrap='"', end_with="\n"
)


def test_each_position_has_its_own_strategy() -> None:
    assert (POSITIONS.min_items, POSITIONS.max_items) == (3, 3)
    assert isinstance(POSITIONS.item, tuple) and hash(POSITIONS)  # frozen and hashable
    for seed in range(8):
        r = run(POSITIONS, ScriptedModel.random(V, seed), temperature=1.0, seed=seed)
        assert r.finish_reason == "stop", (r.text, r.error)
        text = r.text.removesuffix(TOK.decode([EOS]))
        colour, number, word = json.loads(text)
        assert colour in ("red", "blue") and re.fullmatch("[0-9]{1,2}", number)
        assert re.fullmatch("[a-z]{1,4}", word) and text.endswith("\n")
        assert POSITIONS.parse(text) == [colour, number, word]


def test_positions_reject_what_the_next_position_would_take() -> None:
    """A word where the number goes is masked: the model's favourite never appears."""
    model = ScriptedModel.preferring(V, enc("red") + enc("abc") + enc('"') + enc("7"))
    r = run(ListOf([Choices(["red"]), Chars("numeric", 1)]), model).raise_for_error()
    assert r.text.removesuffix(TOK.decode([EOS])) == "[red, 7]"


def test_positions_nest_and_parse_without_wrap() -> None:
    inner = ListOf(Chars("alpha", 3), open="(", close=")", max_items=2)
    outer = ListOf([Choices(["x", "y"]), inner], sep="; ")
    assert outer.parse("[y; (ab, c)]") == ["y", "(ab, c)"]
    assert inner.parse("(ab, c)") == ["ab", "c"]
    with pytest.raises(ValueError, match="cannot parse"):
        outer.parse("[z; ()]")


def test_positional_list_errors() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        ListOf([])
    with pytest.raises(ValueError, match="exactly 2"):
        ListOf([Choices(["a"]), Choices(["b"])], min_items=1)
    assert ListOf([Choices(["a"]), Choices(["b"])], min_items=2, max_items=2).max_items == 2
    with pytest.raises(ValueError, match="no regex form"):
        ListOf([Choices(["a"]), Until("!")])
    with pytest.raises(TypeError, match="strategies"):
        ListOf([Choices(["a"]), "b"])  # type: ignore[list-item]
