# SPDX-License-Identifier: Apache-2.0
"""Constrained-generation strategies: logit masks and forced tokens, vectorised with numpy.

Masks come from token tables cached per tokenizer (:mod:`quote.sdk.tokens`);
no step loops over the vocabulary in Python.
"""

from quote.sdk.strategies.automaton import CharDFA, PatternError, TokenIndex, escape
from quote.sdk.strategies.base import (
    SPARSE_LIMIT,
    Strategy,
    StrategyError,
    StrategyRunner,
    StrategyState,
    mask_action,
)
from quote.sdk.strategies.builtin import (
    CHAR_CLASSES,
    Chars,
    Choices,
    ListOf,
    OneToken,
    Regex,
    Until,
    UntilAny,
)
from quote.sdk.strategies.constrain import constrain

__all__ = [
    "CHAR_CLASSES",
    "SPARSE_LIMIT",
    "CharDFA",
    "Chars",
    "Choices",
    "ListOf",
    "OneToken",
    "PatternError",
    "Regex",
    "Strategy",
    "StrategyError",
    "StrategyRunner",
    "StrategyState",
    "TokenIndex",
    "Until",
    "UntilAny",
    "constrain",
    "escape",
    "mask_action",
]
