# SPDX-License-Identifier: Apache-2.0
"""The strategy protocol: an immutable :class:`Strategy` and the :class:`StrategyState` of one answer.

A :class:`Strategy` is an immutable description (choices, a regex, a JSON schema...);
its :meth:`~Strategy.start` returns a fresh :class:`StrategyState` for one answer.
A state says which tokens may come next (:meth:`~StrategyState.allowed`, or the
packed :meth:`~StrategyState.bitmask` of llguidance-backed states), whether the
answer may end here (:attr:`~StrategyState.complete`) or must
(:attr:`~StrategyState.finished`), which tokens are certain
(:meth:`~StrategyState.forced`), and forgets its last tokens on a backtrack
(:meth:`~StrategyState.rollback`). Ending an answer that could also continue is the
model's choice of an *end token*, handled by
:class:`~quote.sdk.strategies.runner.StrategyRunner`.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
import numpy.typing as npt

from quote.sdk.errors import QuoteSDKError
from quote.sdk.tokens import TokenTable

__all__ = ["SPARSE_LIMIT", "Strategy", "StrategyError", "StrategyState"]

SPARSE_LIMIT = 1024
"""Masks of up to this many tokens are sent as sparse ``allow`` lists; larger ones as a
packed ``allow_bitmask``."""

_DEFAULT: Any = object()


class StrategyError(QuoteSDKError, RuntimeError):
    """A strategy cannot continue (a disallowed token, no usable token, no end token)."""


class StrategyState(abc.ABC):
    """The progress of one constrained answer.

    Attributes:
        table: The tokenizer's token table.
        tokens: The answer's token ids so far.
        text: The answer's text so far.
    """

    def __init__(self, table: TokenTable) -> None:
        self.table = table
        self.tokens: list[int] = []
        self.text = ""

    @property
    @abc.abstractmethod
    def complete(self) -> bool:
        """The answer may end here."""

    @property
    @abc.abstractmethod
    def finished(self) -> bool:
        """The answer must end here (no token can continue it)."""

    @abc.abstractmethod
    def allowed(self) -> npt.NDArray[np.int64]:
        """Sorted token ids that may continue the answer (the end token excluded)."""

    def bitmask(self) -> npt.NDArray[np.int32] | None:
        """The allowed tokens as a packed bitmask (end token excluded), or ``None``.

        States that compute their masks packed (llguidance) return them here, so the
        runner never expands them into id lists; others return ``None`` and are asked
        for :meth:`allowed`.
        """
        return None

    def forced(self) -> list[int]:
        """Tokens that are certain to come next (empty when the model has a choice)."""
        if self.complete:
            return []
        ids = self.allowed()
        return [int(ids[0])] if ids.shape[0] == 1 else []

    @abc.abstractmethod
    def _advance(self, token: int) -> None:
        """Consume one token (raise :class:`StrategyError` if not allowed)."""

    def _rollback(self, n: int) -> None:
        """Forget the internal effect of the last ``n`` tokens (``0 < n <= len(tokens)``)."""
        raise StrategyError(f"{type(self).__name__} cannot roll back")

    def advance(self, token: int) -> None:
        """Consume one token that entered the sequence."""
        if self.finished:
            raise StrategyError(f"token {token} arrived after the answer finished")
        self._advance(int(token))
        self.tokens.append(int(token))
        self.text += self.table.text(int(token)) or ""

    def rollback(self, n: int) -> int:
        """Forget the last ``n`` tokens of the answer (a backtrack); returns how many went."""
        n = min(max(int(n), 0), len(self.tokens))
        if n:
            self._rollback(n)
            del self.tokens[-n:]
            self.text = "".join(self.table.text(t) or "" for t in self.tokens)
        return n

    def value(self) -> Any:
        """The answer (text by default; strategies may parse it)."""
        return self.text


class Strategy(abc.ABC):
    """An immutable constraint description; :meth:`start` begins one answer."""

    @abc.abstractmethod
    def start(self, tokenizer: Any) -> StrategyState:
        """A fresh state for one answer with ``tokenizer``."""

    def pattern(self) -> str | None:
        """A regex of the answers' text (for composition in lists), or ``None``."""
        return None
