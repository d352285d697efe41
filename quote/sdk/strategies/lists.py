# SPDX-License-Identifier: Apache-2.0
"""``ListOf``: a delimited list of items, each under a strategy with a regex form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from quote.sdk.strategies.base import Strategy
from quote.sdk.strategies.patterns import escape, lark
from quote.sdk.strategies.text import TextStrategy

__all__ = ["ListOf"]


@dataclass(frozen=True)
class ListOf(TextStrategy):
    """A list of items: ``open item sep item ... close`` then ``end_with``.

    Each item is wrapped in ``wrap`` (e.g. ``'"'``) when given. ``item`` must
    have a regex form (:meth:`Strategy.pattern`): ``Choices``, ``Chars`` with
    an int or no stop, ``Regex`` without ``max_chars``, or another ``ListOf``.
    The value is the list of item strings.
    """

    item: Strategy
    open: str = "["
    close: str = "]"
    sep: str = ", "
    wrap: str = ""
    min_items: int = 0
    max_items: int | None = None
    end_with: str = ""

    def __post_init__(self) -> None:
        if self.item.pattern() is None:
            raise ValueError(f"ListOf: {type(self.item).__name__} has no regex form")
        if self.min_items < 0 or (self.max_items is not None and self.max_items < self.min_items):
            raise ValueError("ListOf: need 0 <= min_items <= max_items")
        self.check()

    def _item(self) -> str:
        w = escape(self.wrap)
        return f"{w}{self.item.pattern()}{w}"

    def regex(self) -> str:
        """The regex of the whole list's text."""
        one = self._item()
        lo = max(self.min_items - 1, 0)
        hi = "" if self.max_items is None else str(self.max_items - 1)
        rest = f"({escape(self.sep)}{one}){{{lo},{hi}}}"
        body = one + rest
        if self.max_items == 0:
            body = ""
        elif self.min_items == 0:
            body = f"({body})?"
        return escape(self.open) + body + escape(self.close) + escape(self.end_with)

    def term(self) -> str:
        return lark(self.regex())

    def pattern(self) -> str:
        return "(" + self.regex() + ")"

    def parse(self, text: str) -> list[str]:
        body = text
        for affix in (self.end_with, self.close):
            if affix and body.endswith(affix):
                body = body[: -len(affix)]
        if self.open and body.startswith(self.open):
            body = body[len(self.open) :]
        if not body:
            return []
        one = re.compile(f"{escape(self.wrap)}({self.item.pattern()}){escape(self.wrap)}")
        items: list[str] = []
        pos = 0
        while True:
            for m in _matches(one, body, pos):
                end = m.end()
                if end == len(body) or body.startswith(self.sep, end):
                    items.append(m.group(1))
                    pos = end + len(self.sep)
                    break
            else:
                raise ValueError(f"ListOf: cannot parse {text!r}")
            if end == len(body):
                return items


def _matches(one: re.Pattern[str], body: str, pos: int) -> Iterator[re.Match[str]]:
    """Candidate item matches at ``pos``, longest first."""
    for end in range(len(body), pos, -1):
        m = one.fullmatch(body, pos, end)
        if m:
            yield m
