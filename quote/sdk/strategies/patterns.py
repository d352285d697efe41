# SPDX-License-Identifier: Apache-2.0
"""Regex text for the strategies: literals, and Lark terminals for llguidance.

Patterns use llguidance's regex dialect (Rust ``regex`` syntax: no look-around, no
back-references). A strategy's grammar is one Lark terminal, so regular-language
operators llguidance adds for terminals are available: ``A & B`` (both match) and
``~A`` (anything ``A`` does not match). They express "up to the first match"
(:func:`first_match`) and length caps (:func:`capped`) exactly.
"""

from __future__ import annotations

from quote.sdk.grammar import GrammarError

__all__ = ["ANY", "PatternError", "capped", "escape", "first_match", "lark", "terminal_grammar"]

_SPECIAL = set("\\.^$*+?{}[]|()-/\"'#&~")

ANY = "(?s:.)"
"""Any one character, newlines included."""


class PatternError(GrammarError):
    """A regular expression llguidance cannot compile (the message names it and why)."""


def escape(text: str) -> str:
    """Escape ``text`` as a regex literal (valid for llguidance and Python's ``re``)."""
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


def lark(pattern: str) -> str:
    """``pattern`` as a Lark regex literal ``/.../`` (slashes and line breaks escaped)."""
    out: list[str] = []
    chars = iter(pattern)
    for c in chars:
        if c == "\\":
            nxt = next(chars, "")
            out.append("\\" + nxt)
        elif c == "/":
            out.append("\\/")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        else:
            out.append(c)
    return "/" + "".join(out) + "/"


def first_match(pattern: str) -> str:
    """A terminal for the texts matching ``pattern`` with no shorter prefix matching it.

    The language of "up to the first match": ``L & ~(L .+)``.
    """
    return f"({lark(pattern)} & ~({lark(pattern)} {lark(ANY + '+')}))"


def capped(term: str, max_chars: int) -> str:
    """``term`` limited to ``max_chars`` characters."""
    return f"({term} & {lark(f'{ANY}{{0,{int(max_chars)}}}')})"


def terminal_grammar(term: str) -> str:
    """A Lark grammar whose whole text is one ``term`` (a terminal expression)."""
    return f"start: ANSWER\nANSWER: {term}\n"
