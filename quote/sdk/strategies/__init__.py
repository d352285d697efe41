# SPDX-License-Identifier: Apache-2.0
"""Constrained-generation strategies: logit masks and forced tokens.

``Choices`` and ``OneToken`` walk their strings' own tokens. ``Regex``, ``Until``,
``UntilAny``, ``Chars``, ``ListOf``, ``JsonSchema`` and ``Grammar`` are enforced by an
llguidance matcher (:mod:`quote.sdk.grammar`), one per answer: masks come packed
(``AdjustedLogits.allow_bitmask``, or an ``allow`` list when small), forced text comes
as the grammar's fast-forward tokens in one ``ForceTokens``, and
:meth:`StrategyRunner.backtrack` rolls the matcher back.
"""

from quote.sdk.grammar import GrammarError, GrammarTimeout
from quote.sdk.strategies.base import SPARSE_LIMIT, Strategy, StrategyError, StrategyState
from quote.sdk.strategies.builtin import (
    CHAR_CLASSES,
    Chars,
    Choices,
    Grammar,
    JsonSchema,
    ListOf,
    OneToken,
    Regex,
    Until,
    UntilAny,
)
from quote.sdk.strategies.constrain import constrain
from quote.sdk.strategies.llg import GrammarState, GrammarStrategy
from quote.sdk.strategies.masks import bitmask_action, mask_action
from quote.sdk.strategies.patterns import PatternError, escape
from quote.sdk.strategies.runner import StrategyRunner
from quote.sdk.strategies.text import TextStrategy

__all__ = [
    "CHAR_CLASSES",
    "SPARSE_LIMIT",
    "Chars",
    "Choices",
    "Grammar",
    "GrammarError",
    "GrammarState",
    "GrammarStrategy",
    "GrammarTimeout",
    "JsonSchema",
    "ListOf",
    "OneToken",
    "PatternError",
    "Regex",
    "Strategy",
    "StrategyError",
    "StrategyRunner",
    "StrategyState",
    "TextStrategy",
    "Until",
    "UntilAny",
    "bitmask_action",
    "constrain",
    "escape",
    "mask_action",
]
