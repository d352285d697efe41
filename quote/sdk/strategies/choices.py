# SPDX-License-Identifier: Apache-2.0
"""Token-level strategies: one of several strings (a trie over their tokens), one token of a set.

These constrain the exact token sequences of their strings (the tokenizer's own encoding),
so they need no grammar engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from quote.sdk.strategies.base import Strategy, StrategyError, StrategyState
from quote.sdk.strategies.patterns import escape
from quote.sdk.tokenize import tokenize
from quote.sdk.tokens import TokenTable, token_table

__all__ = ["Choices", "OneToken"]

_EMPTY = np.zeros(0, dtype=np.int64)


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
        self.path = [root]

    @property
    def node(self) -> _Node:
        return self.path[-1]

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
        self.path.append(nxt)

    def _rollback(self, n: int) -> None:
        del self.path[-n:]

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
        pos = int(np.searchsorted(self.ids, token))
        if pos >= self.ids.shape[0] or int(self.ids[pos]) != token:
            raise StrategyError(f"OneToken: token {token} is not in the set")

    def _rollback(self, n: int) -> None:
        """Nothing beyond the token list to undo."""

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
