# SPDX-License-Identifier: Apache-2.0
"""Text strategies on llguidance: regex, until a tag, until a character, runs of characters.

Each is one Lark terminal (:mod:`quote.sdk.strategies.patterns`) enforced by an llguidance
matcher: masks over the whole vocabulary come packed from llguidance, forced text comes as
its fast-forward tokens. Patterns use llguidance's regex dialect (Rust ``regex`` syntax).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from quote.sdk.grammar import GrammarError, GrammarSpec
from quote.sdk.strategies.llg import GrammarStrategy
from quote.sdk.strategies.patterns import (
    ANY,
    PatternError,
    capped,
    escape,
    first_match,
    lark,
    terminal_grammar,
)

__all__ = ["CHAR_CLASSES", "Chars", "Regex", "TextStrategy", "Until", "UntilAny"]


class TextStrategy(GrammarStrategy):
    """A strategy whose answers are one regular language (a Lark terminal)."""

    error: ClassVar[type[GrammarError]] = PatternError

    def term(self) -> str:
        """The Lark terminal expression of the answers."""
        raise NotImplementedError

    def spec(self) -> GrammarSpec:
        return GrammarSpec("lark", terminal_grammar(self.term()))


def _check_cap(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{name}: max_chars must be a non-negative integer or None")


@dataclass(frozen=True)
class Regex(TextStrategy):
    """Text matching ``pattern`` entirely.

    Attributes:
        pattern_text: The regular expression (llguidance's dialect, Rust ``regex`` syntax:
            no look-around or back-references; the whole answer must match, no anchors needed).
        max_chars: Optional cap on the answer's length in characters.
    """

    pattern_text: str
    max_chars: int | None = None

    def __post_init__(self) -> None:
        _check_cap("Regex", self.max_chars)
        self.check()

    def term(self) -> str:
        base = lark(self.pattern_text)
        return base if self.max_chars is None else capped(base, self.max_chars)

    def pattern(self) -> str | None:
        return None if self.max_chars is not None else "(" + self.pattern_text + ")"


@dataclass(frozen=True)
class Until(TextStrategy):
    """Free text up to and including the first ``tag``; the value excludes the tag.

    ``max_chars`` caps the text (tag included): at the cap the answer ends even
    without the tag. ``start_tag``, when given, is forced first (the model cannot leave
    it out: useful when the prompt that asked for it is erased); it is not counted
    by ``max_chars`` and the value excludes it, so ``Until("</q>", start_tag="<q>")``
    answers ``"<q>Where to?</q>"`` with the value ``"Where to?"``.
    """

    tag: str
    max_chars: int | None = None
    start_tag: str = ""

    def __post_init__(self) -> None:
        if not self.tag:
            raise ValueError("Until: tag must not be empty")
        _check_cap("Until", self.max_chars)
        _check_start("Until", self.start_tag)
        self.check()

    def term(self) -> str:
        tag = escape(self.tag)
        first = first_match(f"{ANY}*{tag}")
        if self.max_chars is None:
            return _started(self.start_tag, first)
        n = self.max_chars
        untagged = f"({lark(f'{ANY}{{{n}}}')} & ~{lark(f'{ANY}*{tag}{ANY}*')})"
        return _started(self.start_tag, f"({capped(first, n)} | {untagged})")

    def parse(self, text: str) -> str:
        text = _unstarted(self.start_tag, text)
        return text[: -len(self.tag)] if text.endswith(self.tag) else text


def _check_start(name: str, start: object) -> None:
    if not isinstance(start, str):
        raise TypeError(f"{name}: start_tag must be a str, got {start!r}")


def _started(start: str, term: str) -> str:
    """``term`` preceded by the literal ``start`` (unchanged when ``start`` is empty)."""
    return f"({lark(escape(start))} {term})" if start else term


def _unstarted(start: str, text: str) -> str:
    """``text`` without its leading ``start``."""
    return text[len(start) :] if start and text.startswith(start) else text


def _char_class(chars: str) -> str:
    return "".join("\\" + c if c in "\\]^-[&~" else c for c in chars)


@dataclass(frozen=True)
class UntilAny(TextStrategy):
    """Free text up to the first of ``chars``; the value excludes that character.

    ``max_chars`` caps the text: at the cap the answer ends even without the character.
    ``start_tag``, when given, is forced first and excluded from the value (as in
    :class:`Until`).
    """

    chars: str
    max_chars: int | None = None
    start_tag: str = ""

    def __post_init__(self) -> None:
        if not self.chars:
            raise ValueError("UntilAny: chars must not be empty")
        _check_cap("UntilAny", self.max_chars)
        _check_start("UntilAny", self.start_tag)
        self.check()

    def term(self) -> str:
        cls = _char_class(self.chars)
        base = lark(f"[^{cls}]*[{cls}]")
        if self.max_chars is None:
            return _started(self.start_tag, base)
        capped_any = f"({capped(base, self.max_chars)} | {lark(f'[^{cls}]{{{self.max_chars}}}')})"
        return _started(self.start_tag, capped_any)

    def parse(self, text: str) -> str:
        text = _unstarted(self.start_tag, text)
        return text[:-1] if text and text[-1] in self.chars else text


CHAR_CLASSES: dict[str, str] = {
    "alpha": "[A-Za-z]",
    "alphanumeric": "[A-Za-z0-9]",
    "numeric": "[0-9]",
    "string": '([^"\\\\\\x00-\\x1f]|\\\\["\\\\/bfnrt])',
}
"""Character classes of :class:`Chars` (ASCII letters/digits; JSON string characters)."""

_JSON_NUMBER = "-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+\\-]?[0-9]+)?"


@dataclass(frozen=True)
class Chars(TextStrategy):
    """Characters of one kind: ``alpha``, ``alphanumeric``, ``numeric``, ``string``, ``json_number``.

    ``string`` is JSON string content (no unescaped quote or control char).
    ``stop``: ``None`` = unbounded (ended by the end token); an ``int`` = the
    maximum length in characters; a ``str`` = a terminator the model writes to
    end the run (kept in the text, dropped from the value).
    """

    kind: str
    stop: int | str | None = None
    min_chars: int = field(default=1)

    def __post_init__(self) -> None:
        if self.kind not in CHAR_CLASSES and self.kind != "json_number":
            raise ValueError(f"Chars: unknown kind {self.kind!r}")
        if isinstance(self.stop, bool) or not isinstance(self.stop, int | str | None):
            raise TypeError(f"Chars: stop must be an int, a str or None, got {self.stop!r}")
        if isinstance(self.stop, int) and self.stop < max(self.min_chars, 1):
            raise ValueError("Chars: an int stop (max length) must be >= min_chars and >= 1")
        if self.stop == "":
            raise ValueError("Chars: a str stop must not be empty")
        self.check()

    def _body(self) -> str:
        if self.kind == "json_number":
            return _JSON_NUMBER
        cls = CHAR_CLASSES[self.kind]
        if isinstance(self.stop, int):
            return f"{cls}{{{self.min_chars},{self.stop}}}"
        return (
            f"{cls}{{{self.min_chars},}}"
            if self.min_chars > 1
            else (cls + ("+" if self.min_chars else "*"))
        )

    def term(self) -> str:
        if isinstance(self.stop, str):
            return first_match(self._body() + escape(self.stop))
        if self.kind == "json_number" and isinstance(self.stop, int):
            return capped(lark(self._body()), self.stop)
        return lark(self._body())

    def pattern(self) -> str | None:
        if isinstance(self.stop, str) or (self.kind == "json_number" and self.stop is not None):
            return None
        return "(" + self._body() + ")"

    def parse(self, text: str) -> Any:
        if isinstance(self.stop, str) and text.endswith(self.stop):
            text = text[: -len(self.stop)]
        if self.kind == "json_number" and text:
            return json.loads(text)
        return text
