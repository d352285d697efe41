# SPDX-License-Identifier: Apache-2.0
"""Built-in strategies: choices, regex, until, characters, lists, single token."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from quote.sdk.strategies.automaton import TokenIndex, escape, index_for
from quote.sdk.strategies.base import Strategy, StrategyError, StrategyState
from quote.sdk.tokenize import tokenize
from quote.sdk.tokens import TokenTable, token_table

__all__ = [
    "CHAR_CLASSES",
    "Chars",
    "Choices",
    "ListOf",
    "OneToken",
    "Regex",
    "Until",
    "UntilAny",
]

_EMPTY = np.zeros(0, dtype=np.int64)


# --------------------------------------------------------------------------- choices
class _Node:
    __slots__ = ("children", "choice", "_ids")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.choice: str | None = None
        self._ids: npt.NDArray[np.int64] | None = None

    def ids(self) -> npt.NDArray[np.int64]:
        if self._ids is None:
            self._ids = np.asarray(sorted(self.children), dtype=np.int64)
        return self._ids


class _ChoicesState(StrategyState):
    def __init__(self, table: TokenTable, root: _Node) -> None:
        super().__init__(table)
        self.node = root

    @property
    def complete(self) -> bool:
        return self.node.choice is not None

    @property
    def finished(self) -> bool:
        return not self.node.children

    def allowed(self) -> npt.NDArray[np.int64]:
        return self.node.ids()

    def forced(self) -> list[int]:
        out: list[int] = []
        node = self.node
        while node.choice is None and len(node.children) == 1:
            (tok, node), *_ = node.children.items()
            out.append(tok)
        return out

    def _advance(self, token: int) -> None:
        nxt = self.node.children.get(token)
        if nxt is None:
            raise StrategyError(f"Choices: token {token} leaves every choice (after {self.text!r})")
        self.node = nxt

    def value(self) -> str | None:
        return self.node.choice


@dataclass(frozen=True)
class Choices(Strategy):
    """One of ``choices``, as a trie over their token ids.

    A choice that is a prefix of another stays reachable: at its end the model
    chooses between the end token and the longer choice's next token.
    """

    choices: tuple[str, ...]

    def __init__(self, choices: Iterable[str]) -> None:
        items = tuple(dict.fromkeys(str(c) for c in choices))
        if not items or any(not c for c in items):
            raise ValueError("Choices needs at least one non-empty choice")
        object.__setattr__(self, "choices", items)

    def _trie(self, tokenizer: Any) -> _Node:
        table = token_table(tokenizer)
        key = ("choices", self.choices)
        root: _Node | None = table.cache.get(key)
        if root is None:
            root = _Node()
            for choice in self.choices:
                node = root
                for t in tokenize(choice, tokenizer):
                    node = node.children.setdefault(t, _Node())
                node.choice = choice
            table.cache[key] = root
        return root

    def start(self, tokenizer: Any) -> StrategyState:
        return _ChoicesState(token_table(tokenizer), self._trie(tokenizer))

    def pattern(self) -> str:
        return "(" + "|".join(escape(c) for c in self.choices) + ")"


# --------------------------------------------------------------------------- regex family
class _RegexState(StrategyState):
    def __init__(
        self, table: TokenTable, index: TokenIndex, strategy: _RegexBase, cap: int | None = None
    ) -> None:
        super().__init__(table)
        self.cap = cap
        self.index = index
        self.dfa = index.dfa
        self.strategy = strategy
        self.dfa_state = self.dfa.initial
        if self.dfa_state == self.dfa.dead:
            raise StrategyError(f"{type(strategy).__name__}: the pattern matches nothing")

    def _at_cap(self) -> bool:
        return self.cap is not None and len(self.text) >= self.cap

    @property
    def complete(self) -> bool:
        return self.dfa.is_final(self.dfa_state) or self._at_cap()

    @property
    def finished(self) -> bool:
        return not self.dfa.has_exits(self.dfa_state) or self._at_cap()

    def allowed(self) -> npt.NDArray[np.int64]:
        if self.finished:
            return _EMPTY
        ids = self.index.entry(self.dfa_state).ids
        if self.cap is not None:
            ids = ids[self.table.lengths[ids] <= self.cap - len(self.text)]
        return ids

    def _advance(self, token: int) -> None:
        nxt = self.index.entry(self.dfa_state).next_state(token)
        if nxt is None:
            raise StrategyError(
                f"{type(self.strategy).__name__}: token {token} "
                f"({self.table.text(token)!r}) does not fit after {self.text!r}"
            )
        self.dfa_state = nxt

    def value(self) -> Any:
        return self.strategy.parse(self.text)


class _RegexBase(Strategy):
    """A strategy defined by one character regex."""

    def regex(self) -> tuple[str, bool, int | None]:
        """``(pattern, stop_at_final, max_chars)``."""
        raise NotImplementedError

    def truncate_at(self) -> int | None:
        """A length (chars) at which the answer ends even if unmatched; ``None`` = never."""
        return None

    def start(self, tokenizer: Any) -> StrategyState:
        table = token_table(tokenizer)
        pattern, stop, cap = self.regex()
        index = index_for(table, pattern, stop_at_final=stop, max_chars=cap)
        return _RegexState(table, index, self, self.truncate_at())

    def pattern(self) -> str | None:
        pattern, stop, cap = self.regex()
        if stop or cap is not None or self.truncate_at() is not None:
            return None
        return "(" + pattern + ")"

    def parse(self, text: str) -> Any:
        """Turn the answer's text into its value (the text itself by default)."""
        return text


@dataclass(frozen=True)
class Regex(_RegexBase):
    """Text matching ``pattern`` entirely (a real DFA over token strings).

    Attributes:
        pattern: The regular expression (``interegular`` syntax: no look-around/back-references).
        max_chars: Optional cap on the answer's length in characters.
    """

    pattern_text: str
    max_chars: int | None = None

    def regex(self) -> tuple[str, bool, int | None]:
        return self.pattern_text, False, self.max_chars


@dataclass(frozen=True)
class Until(_RegexBase):
    """Free text up to and including the first ``tag``; the value excludes the tag.

    ``max_chars`` caps the text (tag included): at the cap the answer ends even
    without the tag.
    """

    tag: str
    max_chars: int | None = None

    def __post_init__(self) -> None:
        if not self.tag:
            raise ValueError("Until: tag must not be empty")

    def regex(self) -> tuple[str, bool, int | None]:
        return "[\\s\\S]*" + escape(self.tag), True, None

    def truncate_at(self) -> int | None:
        return self.max_chars

    def parse(self, text: str) -> str:
        return text[: -len(self.tag)] if text.endswith(self.tag) else text


@dataclass(frozen=True)
class UntilAny(_RegexBase):
    """Free text up to the first of ``chars``; the value excludes that character."""

    chars: str
    max_chars: int | None = None

    def __post_init__(self) -> None:
        if not self.chars:
            raise ValueError("UntilAny: chars must not be empty")

    def regex(self) -> tuple[str, bool, int | None]:
        cls = "".join("\\" + c if c in "\\]^-[" else c for c in self.chars)
        return f"[^{cls}]*[{cls}]", True, None

    def truncate_at(self) -> int | None:
        return self.max_chars

    def parse(self, text: str) -> str:
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
class Chars(_RegexBase):
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

    def regex(self) -> tuple[str, bool, int | None]:
        cap = self.stop if self.kind == "json_number" and isinstance(self.stop, int) else None
        if isinstance(self.stop, str):
            return self._body() + escape(self.stop), True, cap
        return self._body(), False, cap

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


@dataclass(frozen=True)
class ListOf(_RegexBase):
    """A list of items: ``open item sep item ... close`` then ``end_with``.

    Each item is wrapped in ``wrap`` (e.g. ``'"'``) when given. ``item`` must
    have a regex form (:meth:`Strategy.pattern`): ``Choices``, ``Chars`` with
    an int or no stop, ``Regex``, or another ``ListOf``. The value is the list
    of item strings.
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

    def _item(self) -> str:
        w = escape(self.wrap)
        return f"{w}{self.item.pattern()}{w}"

    def regex(self) -> tuple[str, bool, int | None]:
        one = self._item()
        lo = max(self.min_items - 1, 0)
        hi = "" if self.max_items is None else str(self.max_items - 1)
        rest = f"({escape(self.sep)}{one}){{{lo},{hi}}}"
        body = one + rest
        if self.max_items == 0:
            body = ""
        elif self.min_items == 0:
            body = f"({body})?"
        return escape(self.open) + body + escape(self.close) + escape(self.end_with), False, None

    def pattern(self) -> str:
        return "(" + self.regex()[0] + ")"

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


def _matches(one: re.Pattern[str], body: str, pos: int) -> Iterable[re.Match[str]]:
    """Candidate item matches at ``pos``, longest first."""
    for end in range(len(body), pos, -1):
        m = one.fullmatch(body, pos, end)
        if m:
            yield m


# --------------------------------------------------------------------------- single token
class _OneTokenState(StrategyState):
    def __init__(self, table: TokenTable, ids: npt.NDArray[np.int64]) -> None:
        super().__init__(table)
        self.ids = ids

    @property
    def complete(self) -> bool:
        return bool(self.tokens)

    @property
    def finished(self) -> bool:
        return bool(self.tokens)

    def allowed(self) -> npt.NDArray[np.int64]:
        return _EMPTY if self.tokens else self.ids

    def _advance(self, token: int) -> None:
        if int(np.searchsorted(self.ids, token)) >= self.ids.shape[0] or token not in self.ids:
            raise StrategyError(f"OneToken: token {token} is not in the set")

    def value(self) -> int | None:
        return self.tokens[0] if self.tokens else None


@dataclass(frozen=True)
class OneToken(Strategy):
    """Exactly one token from a set (ids, or strings that are each one token)."""

    tokens: tuple[int | str, ...]

    def __init__(self, tokens: Sequence[int | str]) -> None:
        if not tokens:
            raise ValueError("OneToken needs at least one token")
        object.__setattr__(self, "tokens", tuple(tokens))

    def start(self, tokenizer: Any) -> StrategyState:
        ids: set[int] = set()
        for t in self.tokens:
            if isinstance(t, str):
                enc = tokenize(t, tokenizer)
                if len(enc) != 1:
                    raise StrategyError(f"OneToken: {t!r} is {len(enc)} tokens, not one")
                ids.add(enc[0])
            else:
                ids.add(int(t))
        return _OneTokenState(token_table(tokenizer), np.asarray(sorted(ids), dtype=np.int64))
