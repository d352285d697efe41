# SPDX-License-Identifier: Apache-2.0
"""Strategy protocol, the per-step mask action, and :class:`StrategyRunner`.

A :class:`Strategy` is an immutable description (choices, a regex, ...); its
:meth:`~Strategy.start` returns a fresh :class:`StrategyState` for one answer.
A state says which tokens may come next (:meth:`~StrategyState.allowed`),
whether the answer may end here (:attr:`~StrategyState.complete`) or must
(:attr:`~StrategyState.finished`), and which tokens are certain
(:meth:`~StrategyState.forced`). Ending an answer that could also continue is
the model's choice of an *end token* (the tokenizer's EOS unless given): the
runner allows it next to the continuations and intercepts it when sampled.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
import numpy.typing as npt

from quote.sdk.actions import Action
from quote.sdk.builder import ActionBuilder
from quote.sdk.errors import QuoteSDKError
from quote.sdk.events import ForwardPass
from quote.sdk.tokens import TokenTable, token_table

__all__ = [
    "SPARSE_LIMIT",
    "Strategy",
    "StrategyError",
    "StrategyRunner",
    "StrategyState",
    "mask_action",
]

SPARSE_LIMIT = 1024
"""Allow-lists up to this size are sent as sparse ``allow`` edits; larger ones as a masked row."""

_DEFAULT: Any = object()


class StrategyError(QuoteSDKError, RuntimeError):
    """A strategy cannot continue (a disallowed token, no usable token, no end token)."""


class StrategyState(abc.ABC):
    """The progress of one constrained answer."""

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

    def forced(self) -> list[int]:
        """Tokens that are certain to come next (empty when the model has a choice)."""
        if self.complete:
            return []
        ids = self.allowed()
        return [int(ids[0])] if ids.shape[0] == 1 else []

    @abc.abstractmethod
    def _advance(self, token: int) -> None:
        """Consume one token (raise :class:`StrategyError` if not allowed)."""

    def advance(self, token: int) -> None:
        """Consume one token that entered the sequence."""
        if self.finished:
            raise StrategyError(f"token {token} arrived after the answer finished")
        self._advance(int(token))
        self.tokens.append(int(token))
        self.text += self.table.text(int(token)) or ""

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


def mask_action(
    actions: ActionBuilder,
    event: ForwardPass,
    ids: npt.NDArray[np.int64],
    *,
    temperature: float | None = None,
) -> Action:
    """An ``AdjustedLogits`` allowing only ``ids`` (sorted, unique).

    Up to :data:`SPARSE_LIMIT` ids it is a sparse ``allow`` edit; beyond, a full
    row (``-inf`` everywhere, the event's logits scattered at ``ids``).
    """
    size = event.logits.shape[0]
    if ids.shape[0] and int(ids[-1]) >= size:
        ids = ids[ids < size]
    if ids.shape[0] <= SPARSE_LIMIT:
        return actions.adjust_logits(allow=ids.tolist(), temperature=temperature)
    row = np.full(size, -np.inf, dtype=np.float32)
    row[ids] = event.logits[ids]
    return actions.adjust_logits(row, temperature=temperature)


class StrategyRunner:
    """Drives one :class:`StrategyState` from engine events (used by mods, SelfPrompt, Flow).

    Call :meth:`forward` at ``ForwardPass`` (returns the mask or forced tokens),
    :meth:`sampled` at ``Sampled`` (true when the end token was chosen) and
    :meth:`added` at ``Added``.

    Args:
        strategy: What to constrain the answer to.
        tokenizer: The model's tokenizer.
        end_token: Token that ends an answer that could also continue;
            defaults to the tokenizer's EOS. ``None`` with no EOS is allowed
            until such a choice arises, which then raises :class:`StrategyError`.
        temperature: Optional per-step temperature (``0`` = greedy).
    """

    def __init__(
        self,
        strategy: Strategy,
        tokenizer: Any,
        *,
        end_token: int | None = _DEFAULT,
        temperature: float | None = None,
    ) -> None:
        self.strategy = strategy
        self.table = token_table(tokenizer)
        self.state = strategy.start(tokenizer)
        self.end_token = self.table.eos_token_id if end_token is _DEFAULT else end_token
        self.temperature = temperature
        self.ended = False

    @property
    def done(self) -> bool:
        """The answer is over (ended by the end token or finished)."""
        return self.ended or self.state.finished

    def forward(self, event: ForwardPass, actions: ActionBuilder) -> Action:
        """The action for this step's logits (forced tokens or a mask)."""
        if self.done:
            raise StrategyError("the answer is already complete")
        forced = self.state.forced()
        if forced:
            return actions.force_tokens(forced)
        ids = self.state.allowed()
        if self.state.complete:
            if self.end_token is None:
                raise StrategyError(
                    f"{type(self.strategy).__name__}: the answer {self.state.text!r} may end or "
                    "continue, which needs an end token, and the tokenizer has no EOS; "
                    "pass end_token="
                )
            end = int(self.end_token)
            pos = int(np.searchsorted(ids, end))
            if pos == ids.shape[0] or int(ids[pos]) != end:
                ids = np.insert(ids, pos, end)
        if ids.shape[0] == 0:
            raise StrategyError(
                f"{type(self.strategy).__name__}: no token can continue {self.state.text!r}"
            )
        return mask_action(actions, event, ids, temperature=self.temperature)

    def sampled(self, token: int) -> bool:
        """Record the sample; true if it is the end token closing a complete answer."""
        if not self.done and self.state.complete and token == self.end_token:
            self.ended = True
            return True
        return False

    def added(self, tokens: tuple[int, ...] | list[int]) -> int:
        """Feed tokens that entered the sequence; returns how many the answer consumed."""
        used = 0
        for t in tokens:
            if self.done:
                break
            self.state.advance(t)
            used += 1
        return used

    def value(self) -> Any:
        """The parsed answer so far."""
        return self.state.value()
