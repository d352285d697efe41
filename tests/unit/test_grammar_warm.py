# SPDX-License-Identifier: Apache-2.0
"""Matchers start as copies of a warm matcher (first mask computed at compile time).

The oracle is a matcher llguidance builds from scratch: every mask must be equal.
"""

from __future__ import annotations

import llguidance
import numpy as np
import pytest
from sdk_tokenizer import bpe_tokenizer

from quote.sdk.grammar import GrammarSpec, Matcher, compile_grammar, llg_tokenizer

pytestmark = pytest.mark.unit

TOK = bpe_tokenizer()
LLTOK = llg_tokenizer(TOK, [TOK.eos_token_id])
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 6}, "n": {"type": "integer"}},
    "required": ["name", "n"],
    "additionalProperties": False,
}


def _fresh_mask(grammar: str, tokens: list[int]) -> np.ndarray:
    m = llguidance.LLMatcher(LLTOK, grammar)
    assert m.consume_tokens(tokens) or not tokens
    return np.frombuffer(m.compute_bitmask(), dtype=np.int32)


def test_copies_of_the_warm_matcher_mask_like_fresh_ones_and_are_independent() -> None:
    grammar = compile_grammar(GrammarSpec.json_schema(SCHEMA), LLTOK)
    a, b = Matcher(grammar, LLTOK), Matcher(grammar, LLTOK)
    text = TOK.encode('{"name":"ab","n":7}', add_special_tokens=False)
    width = len(TOK)
    for i, token in enumerate(text):
        want = _fresh_mask(grammar, text[:i])[: (width + 31) // 32]
        assert np.array_equal(a.mask(width), want)
        assert a.advance([token]) == 1
    assert a.done or a.accepting
    assert np.array_equal(b.mask(width), _fresh_mask(grammar, [])[: (width + 31) // 32])
    assert not b.accepting  # a's tokens did not move b
