# SPDX-License-Identifier: Apache-2.0
"""``constrain``: a ready-made mod that constrains a whole completion to a strategy."""

from __future__ import annotations

from typing import Any

from quote.sdk.actions import Action
from quote.sdk.builder import ActionBuilder
from quote.sdk.events import Added, Event, ForwardPass, Sampled
from quote.sdk.mod import DEFAULT_HOLD_BACK, Mod, ModDefinition
from quote.sdk.strategies.base import _DEFAULT, Strategy, StrategyRunner

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

    The answer ends when the model picks the end token (EOS by default) where the
    strategy allows ending, or when the strategy cannot continue: then EOS is
    forced (or, with no EOS, ``ForceOutput`` of the completion so far).
    """

    class _Constrain(Mod):
        def __init__(self) -> None:
            self.runner: StrategyRunner | None = None
            self.completion: list[int] = []

        def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
            if self.runner is None:
                self.runner = StrategyRunner(
                    strategy, tokenizer, end_token=end_token, temperature=temperature
                )
            runner = self.runner
            if isinstance(event, ForwardPass):
                if not runner.done:
                    return runner.forward(event, actions)
                eos = runner.table.eos_token_id
                if eos is not None:
                    return actions.force_tokens([eos])
                return actions.force_output(self.completion)
            if isinstance(event, Sampled):
                runner.sampled(event.token)
            elif isinstance(event, Added):
                self.completion.extend(event.tokens)
                runner.added(event.tokens)
            return None

    _Constrain.__name__ = _Constrain.__qualname__ = f"Constrain_{name}"
    return ModDefinition(name, _Constrain, hold_back)
