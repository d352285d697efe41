# SPDX-License-Identifier: Apache-2.0
"""Every built-in strategy, by its module (kept as one import path for existing code)."""

from __future__ import annotations

from quote.sdk.strategies.choices import Choices, OneToken
from quote.sdk.strategies.lists import ListOf
from quote.sdk.strategies.structured import Grammar, JsonSchema
from quote.sdk.strategies.text import CHAR_CLASSES, Chars, Regex, Until, UntilAny

__all__ = [
    "CHAR_CLASSES",
    "Chars",
    "Choices",
    "Grammar",
    "JsonSchema",
    "ListOf",
    "OneToken",
    "Regex",
    "Until",
    "UntilAny",
]
