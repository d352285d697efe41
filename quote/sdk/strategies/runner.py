# SPDX-License-Identifier: Apache-2.0
"""``StrategyRunner``: drives one strategy's answer from engine events (mods, SelfPrompt, Flow)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from quote.sdk.actions import Action
from quote.sdk.bitmask import popcount, set_bit
from quote.sdk.builder import ActionBuilder
from quote.sdk.events import ForwardPass
from quote.sdk.strategies.base import _DEFAULT, Strategy, StrategyError
from quote.sdk.strategies.masks import bitmask_action, mask_action
from quote.sdk.tokens import token_table

__all__ = ["StrategyRunner"]


class StrategyRunner:
    """Drives one :class:`~quote.sdk.strategies.base.StrategyState` from engine events.

    Call :meth:`forward` at ``ForwardPass`` (returns the mask or the forced tokens),
    :meth:`sampled` at ``Sampled`` (true when the end token was chosen), :meth:`added`
    at ``Added``, and :meth:`backtrack` when your mod returns a ``Backtrack``, so the
    answer (and an llguidance matcher under it) stays in step with the sequence.

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
        self.after = 0  # tokens fed to added() after the answer was over

    @property
    def done(self) -> bool:
        """The answer is over (ended by the end token or finished)."""
        return self.ended or self.state.finished

    def _name(self) -> str:
        return type(self.strategy).__name__

    def _end(self) -> int:
        if self.end_token is None:
            raise StrategyError(
                f"{self._name()}: the answer {self.state.text!r} may end or continue, which "
                "needs an end token, and the tokenizer has no EOS; pass end_token="
            )
        return int(self.end_token)

    def forward(self, event: ForwardPass, actions: ActionBuilder) -> Action:
        """The action for this step's logits: the forced tokens (one chunk) or a mask."""
        if self.done:
            raise StrategyError("the answer is already complete")
        forced = self.state.forced()
        if forced:
            return actions.force_tokens(forced)
        words = self.state.bitmask()
        if words is not None:
            if self.state.complete:
                words = set_bit(words, self._end())
            if popcount(words) == 0:
                raise StrategyError(f"{self._name()}: no token can continue {self.state.text!r}")
            return bitmask_action(actions, words, temperature=self.temperature)
        ids = self.state.allowed()
        if self.state.complete:
            end = self._end()
            pos = int(np.searchsorted(ids, end))
            if pos == ids.shape[0] or int(ids[pos]) != end:
                ids = np.insert(ids, pos, end)
        if ids.shape[0] == 0:
            raise StrategyError(f"{self._name()}: no token can continue {self.state.text!r}")
        return mask_action(actions, event, ids, temperature=self.temperature)

    def sampled(self, token: int) -> bool:
        """Record the sample; true if it is the end token closing a complete answer."""
        if not self.done and self.state.complete and token == self.end_token:
            self.ended = True
            return True
        return False

    def added(self, tokens: Sequence[int]) -> int:
        """Feed tokens that entered the sequence; returns how many the answer consumed."""
        used = 0
        for t in tokens:
            if self.done:
                self.after += 1
                continue
            self.state.advance(t)
            used += 1
        return used

    def forced_now(self) -> list[int]:
        """Tokens to force right away (at ``Added``), saving a forward pass; may be empty."""
        return [] if self.done else self.state.forced()

    def backtrack(self, n: int) -> int:
        """The last ``n`` tokens fed to :meth:`added` left the sequence: forget them.

        Call it with the ``n`` of a ``Backtrack`` your mod returns (tokens it appends
        come back through ``Added``). Tokens that arrived after the answer was over go
        first, then the answer's own; an answer that loses tokens, or every token after
        it (the end token, say), is open again. Returns how many answer tokens went.
        """
        n = max(int(n), 0)
        later = min(n, self.after)
        self.after -= later
        rolled = self.state.rollback(n - later)
        if rolled or (later and self.after == 0):
            self.ended = False
        return rolled

    def value(self) -> Any:
        """The parsed answer so far."""
        return self.state.value()
