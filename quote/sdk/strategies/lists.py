# SPDX-License-Identifier: Apache-2.0
"""``ListOf``: a delimited list of items, each under a strategy with a regex form.

The items share one strategy, or each position has its own (a sequence of strategies:
the list then has exactly that many items).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from quote.sdk.strategies.base import Strategy
from quote.sdk.strategies.patterns import escape, lark
from quote.sdk.strategies.text import TextStrategy

__all__ = ["ListOf"]


@dataclass(frozen=True)
class ListOf(TextStrategy):
    """A list of items: ``open item sep item ... close`` then ``end_with``.

    Each item is wrapped in ``wrap`` (e.g. ``'"'``) when given. ``item`` is one
    strategy for every item, or a sequence of strategies, one per position: then the
    list has exactly ``len(item)`` items (``min_items``/``max_items`` left at their
    defaults or equal to it), e.g. ``ListOf([Choices(["a", "b"]), Chars("numeric", 2)])``
    answers ``[a, 42]``. Item strategies must have a regex form
    (:meth:`Strategy.pattern`): ``Choices``, ``Chars`` with an int or no stop,
    ``Regex`` without ``max_chars``, or another ``ListOf``. The value is the list of
    item strings.
    """

    item: Strategy | Sequence[Strategy]
    open: str = "["
    close: str = "]"
    sep: str = ", "
    wrap: str = ""
    min_items: int = 0
    max_items: int | None = None
    end_with: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.item, Strategy):
            items: tuple[Strategy, ...] = (self.item,)
        else:
            items = tuple(self.item)
            self._positional(items)
            object.__setattr__(self, "item", items)
        for it in items:
            if not isinstance(it, Strategy):
                raise TypeError(f"ListOf: items must be strategies, got {it!r}")
            if it.pattern() is None:
                raise ValueError(f"ListOf: {type(it).__name__} has no regex form")
        if self.min_items < 0 or (self.max_items is not None and self.max_items < self.min_items):
            raise ValueError("ListOf: need 0 <= min_items <= max_items")
        self.check()

    def _positional(self, items: tuple[Strategy, ...]) -> None:
        """Check a per-position list and fix its length (min = max = len(items))."""
        n = len(items)
        if n == 0:
            raise ValueError("ListOf: a sequence of item strategies must not be empty")
        if (self.min_items, self.max_items) not in ((0, None), (n, n)):
            raise ValueError(
                f"ListOf: {n} positional items make a list of exactly {n}; "
                f"min_items={self.min_items}, max_items={self.max_items} disagree"
            )
        object.__setattr__(self, "min_items", n)
        object.__setattr__(self, "max_items", n)

    @property
    def positions(self) -> tuple[Strategy, ...] | None:
        """The per-position item strategies, or ``None`` when one strategy serves every item."""
        return None if isinstance(self.item, Strategy) else tuple(self.item)

    def _item(self, item: Strategy | None = None) -> str:
        w = escape(self.wrap)
        one = self.item if item is None else item
        assert isinstance(one, Strategy)
        return f"{w}{one.pattern()}{w}"

    def _affixes(self, body: str) -> str:
        return escape(self.open) + body + escape(self.close) + escape(self.end_with)

    def regex(self) -> str:
        """The regex of the whole list's text."""
        positions = self.positions
        if positions is not None:
            return self._affixes(escape(self.sep).join(self._item(p) for p in positions))
        one = self._item()
        lo = max(self.min_items - 1, 0)
        hi = "" if self.max_items is None else str(self.max_items - 1)
        rest = f"({escape(self.sep)}{one}){{{lo},{hi}}}"
        body = one + rest
        if self.max_items == 0:
            body = ""
        elif self.min_items == 0:
            body = f"({body})?"
        return self._affixes(body)

    def term(self) -> str:
        return lark(self.regex())

    def pattern(self) -> str:
        return "(" + self.regex() + ")"

    def parse(self, text: str) -> list[str]:
        positions = self.positions
        if positions is not None:
            return self._parse_positions(text, positions)
        body = text
        for affix in (self.end_with, self.close):
            if affix and body.endswith(affix):
                body = body[: -len(affix)]
        if self.open and body.startswith(self.open):
            body = body[len(self.open) :]
        if not body:
            return []
        one = re.compile(self._item_group(self._single()))
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

    def _single(self) -> Strategy:
        assert isinstance(self.item, Strategy)
        return self.item

    def _item_group(self, item: Strategy, name: str | None = None) -> str:
        w = escape(self.wrap)
        group = "(" if name is None else f"(?P<{name}>"
        return f"{w}{group}{item.pattern()}){w}"

    def _parse_positions(self, text: str, positions: tuple[Strategy, ...]) -> list[str]:
        body = escape(self.sep).join(
            self._item_group(p, f"item{i}") for i, p in enumerate(positions)
        )
        m = re.fullmatch(self._affixes(body), text) or re.fullmatch(
            escape(self.open) + body + escape(self.close), text
        )
        if m is None:
            raise ValueError(f"ListOf: cannot parse {text!r}")
        return [m.group(f"item{i}") for i in range(len(positions))]


def _matches(one: re.Pattern[str], body: str, pos: int) -> Iterator[re.Match[str]]:
    """Candidate item matches at ``pos``, longest first."""
    for end in range(len(body), pos, -1):
        m = one.fullmatch(body, pos, end)
        if m:
            yield m
