# SPDX-License-Identifier: Apache-2.0
"""``constrain``: a ready-made mod that constrains a whole completion to a strategy."""

from __future__ import annotations

from typing import Any

from quote.sdk.actions import Action
from quote.sdk.builder import ActionBuilder
from quote.sdk.events import Added, Event, ForwardPass, Sampled
from quote.sdk.mod import DEFAULT_HOLD_BACK, Mod, ModDefinition
from quote.sdk.strategies.base import _DEFAULT, Strategy
from quote.sdk.strategies.runner import StrategyRunner

__all__ = ["constrain"]


def constrain(
    strategy: Strategy,
    *,
    name: str = "constrain",
    end_token: int | None = _DEFAULT,
    temperature: float | None = None,
    hold_back: int = DEFAULT_HOLD_BACK,
) -> ModDefinition:
    """A mod whose completion is exactly one answer of ``strategy``.

    Each step the model samples under the strategy's mask; text the strategy forces is
    appended in one ``ForceTokens`` (right after a sampled token, so it shares that step's
    forward pass). The answer ends when the model picks the end token (EOS by default)
    where the strategy allows ending, or when the strategy cannot continue: then EOS is
    forced (or, with no EOS, ``ForceOutput`` of the completion so far).
    """

    class _Constrain(Mod):
        def __init__(self) -> None:
            self.runner: StrategyRunner | None = None
            self.completion: list[int] = []

        def _end(self, actions: ActionBuilder) -> Action:
            assert self.runner is not None
            eos = self.runner.table.eos_token_id
            if eos is not None:
                return actions.force_tokens([eos])
            return actions.force_output(self.completion)

        def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
            if self.runner is None:
                self.runner = StrategyRunner(
                    strategy, tokenizer, end_token=end_token, temperature=temperature
                )
            runner = self.runner
            if isinstance(event, ForwardPass):
                return runner.forward(event, actions) if not runner.done else self._end(actions)
            if isinstance(event, Sampled):
                runner.sampled(event.token)
            elif isinstance(event, Added):
                self.completion.extend(event.tokens)
                runner.added(event.tokens)
                eos = runner.table.eos_token_id
                if runner.done:
                    if eos is None or eos not in event.tokens:
                        return self._end(actions)
                elif not event.forced:
                    forced = runner.forced_now()
                    if forced:
                        return actions.force_tokens(forced)
            return None

    _Constrain.__name__ = _Constrain.__qualname__ = f"Constrain_{name}"
    return ModDefinition(name, _Constrain, hold_back)
