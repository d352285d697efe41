# SPDX-License-Identifier: Apache-2.0
"""Strategies enforced by an llguidance grammar: one :class:`~quote.sdk.grammar.Matcher` per answer.

A :class:`GrammarStrategy` describes its constraint as a :class:`~quote.sdk.grammar.GrammarSpec`,
checked when the strategy is built (an invalid regex, schema or grammar raises at once,
naming it). Per tokenizer the grammar is compiled once, within
:data:`~quote.sdk.grammar.DEFAULT_BUDGET_S`, into a pristine matcher; each answer gets
a copy. The :class:`GrammarState` gives packed masks (:meth:`GrammarState.bitmask`),
the grammar's fast-forward tokens as :meth:`~GrammarState.forced` and rolls the
matcher back on :meth:`~GrammarState.rollback`.
"""

from __future__ import annotations

import abc
import threading
from collections import OrderedDict
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from quote.sdk.bitmask import bitmask_ids
from quote.sdk.grammar import (
    DEFAULT_BUDGET_S,
    GrammarError,
    GrammarSpec,
    GrammarTimeout,
    Matcher,
    compile_grammar,
)
from quote.sdk.strategies.base import Strategy, StrategyError, StrategyState
from quote.sdk.strategies.llg_tokenizer import strategy_tokenizer
from quote.sdk.tokens import TokenTable, token_table

__all__ = ["GRAMMAR_CACHE_SIZE", "GrammarState", "GrammarStrategy"]

GRAMMAR_CACHE_SIZE = 64
"""Compiled grammars kept per tokenizer (least recently used ones are dropped)."""

_LOCK = threading.Lock()


class GrammarState(StrategyState):
    """One answer under an llguidance grammar."""

    def __init__(self, table: TokenTable, matcher: Matcher, lltok: Any, strategy: Any) -> None:
        super().__init__(table)
        self.matcher = matcher
        self.strategy = strategy
        self._lltok = lltok
        self._eos = [int(t) for t in lltok.eos_tokens]
        self._data = bytearray()
        self._sizes: list[int] = []
        self._words: npt.NDArray[np.int32] | None = None

    @property
    def complete(self) -> bool:
        return self.matcher.accepting

    @property
    def finished(self) -> bool:
        """No token can continue: llguidance stopped, or it accepts and allows only EOS."""
        if self.matcher.done:
            return True
        return self.complete and not self._mask().any()

    def _mask(self) -> npt.NDArray[np.int32]:
        """This position's mask, EOS bits cleared (computed once per position)."""
        if self._words is None:
            words = self.matcher.mask(self.matcher.vocab_size)
            u = words.view(np.uint32)
            for t in self._eos:
                if t // 32 < u.shape[0]:
                    u[t // 32] &= ~np.uint32(1 << (t % 32))
            words.flags.writeable = False
            self._words = words
        return self._words

    def bitmask(self) -> npt.NDArray[np.int32]:
        """A fresh packed mask of the tokens that may continue (EOS bits cleared)."""
        return self._mask().copy()

    def allowed(self) -> npt.NDArray[np.int64]:
        return bitmask_ids(self._mask())

    def forced(self) -> list[int]:
        if self.complete or self.finished:
            return []
        return self.matcher.forced()

    def _piece(self, token: int) -> bytes:
        return bytes(self._lltok.decode_bytes([token]))

    def _advance(self, token: int) -> None:
        if token in self._eos or self.matcher.accepts([token]) != 1:
            raise StrategyError(
                f"{self.strategy.describe()}: token {token} ({self._piece(token)!r}) does not "
                f"fit after {self.text!r}"
            )
        self.matcher.consume([token])
        self._words = None

    def advance(self, token: int) -> None:
        """Consume one token that entered the sequence."""
        token = int(token)
        if self.finished:
            raise StrategyError(f"token {token} arrived after the answer finished")
        self._advance(token)
        piece = self._piece(token)
        self._data += piece
        self._sizes.append(len(piece))
        self.tokens.append(token)
        self.text = self._data.decode("utf-8", errors="replace")

    def rollback(self, n: int) -> int:
        """Forget the last ``n`` tokens: the matcher rolls back with them."""
        n = min(max(int(n), 0), len(self.tokens))
        if n:
            self.matcher.rollback(n)
            self._words = None
            cut = sum(self._sizes[-n:])
            del self._sizes[-n:], self.tokens[-n:]
            if cut:
                del self._data[-cut:]
            self.text = self._data.decode("utf-8", errors="replace")
        return n

    def _rollback(self, n: int) -> None:  # rollback() is overridden whole
        self.matcher.rollback(n)
        self._words = None

    def value(self) -> Any:
        return self.strategy.parse(self.text)


class GrammarStrategy(Strategy):
    """A strategy whose answers are the texts of an llguidance grammar.

    Subclasses give :meth:`spec` and may parse the text in :meth:`parse`; they call
    :meth:`check` once built.
    """

    error: ClassVar[type[GrammarError]] = GrammarError
    budget_s: ClassVar[float] = DEFAULT_BUDGET_S

    @abc.abstractmethod
    def spec(self) -> GrammarSpec:
        """The constraint, as a grammar spec."""

    def describe(self) -> str:
        """A short description for error messages (the strategy and its source)."""
        text = repr(self)
        return text if len(text) <= 160 else text[:157] + "..."

    def parse(self, text: str) -> Any:
        """Turn the answer's text into its value (the text itself by default)."""
        return text

    @cached_property
    def grammar(self) -> str:
        """The llguidance grammar text (raises this strategy's error class if invalid)."""
        try:
            return self.spec().llguidance()
        except GrammarError as exc:
            raise self.error(f"{self.describe()}: {exc}") from exc

    def check(self) -> None:
        """Validate the grammar without a tokenizer; raise :attr:`error` naming what is wrong."""
        import llguidance

        message = str(llguidance.LLMatcher.validate_grammar(self.grammar, None) or "")
        if message:
            raise self.error(f"{self.describe()}: {message.strip()}")

    def start(self, tokenizer: Any) -> StrategyState:
        table = token_table(tokenizer)
        lltok = strategy_tokenizer(tokenizer)
        return GrammarState(table, self._pristine(table, lltok).copy(), lltok, self)

    def _pristine(self, table: TokenTable, lltok: Any) -> Matcher:
        with _LOCK:
            cache: OrderedDict[str, Matcher | GrammarError] = table.cache.setdefault(
                ("llguidance-grammars",), OrderedDict()
            )
            hit = cache.get(self.grammar)
            if hit is not None:
                cache.move_to_end(self.grammar)
        if hit is None:
            try:
                hit = Matcher(compile_grammar(self.spec(), lltok, self.budget_s), lltok)
            except GrammarTimeout as exc:  # not cached: a busy machine may do better next time
                raise GrammarTimeout(f"{self.describe()}: {exc}") from exc
            except GrammarError as exc:
                hit = self.error(f"{self.describe()}: {exc}")
            with _LOCK:
                cache[self.grammar] = hit
                while len(cache) > GRAMMAR_CACHE_SIZE:
                    cache.popitem(last=False)
        if isinstance(hit, GrammarError):
            raise type(hit)(str(hit))
        return hit
