# SPDX-License-Identifier: Apache-2.0
"""Test mods shared by the execution-loop tests (no MAX imports)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from quote.sdk import Added, ForwardPass, Mod, ModDefinition, Prefilled, Sampled
from quote.sdk.actions import Action, Backtrack


class Recorder:
    """Tracks a request's sequence from events alone and records each ForwardPass."""

    def __init__(self) -> None:
        self.seq: list[int] = []
        self.prompt_len = 0
        self.records: list[tuple[tuple[int, ...], np.ndarray]] = []
        self.steps: list[int] = []
        self.prefilled = 0
        self.fired = False

    def see(self, event: Any) -> None:
        if isinstance(event, Prefilled):
            self.prefilled += 1
            self.seq = list(event.prompt_tokens)
            self.prompt_len = len(self.seq)
        elif isinstance(event, ForwardPass):
            self.steps.append(event.step)
            self.records.append((tuple(self.seq), np.array(event.logits, copy=True)))
        elif isinstance(event, Added):
            self.seq.extend(event.tokens)

    def acted(self, action: Action | None) -> None:
        if isinstance(action, Backtrack):
            del self.seq[len(self.seq) - action.n :]


def scripted(
    name: str,
    script: Callable[[Any, Recorder], Action | None],
    sink: list[Recorder] | None = None,
    hold_back: int = 16,
) -> ModDefinition:
    """A class-based mod: ``script(event, recorder)`` decides; a recorder watches."""

    class _Scripted(Mod):
        def __init__(self) -> None:
            self.rec = Recorder()
            if sink is not None:
                sink.append(self.rec)

        def handle(self, event: Any, actions: Any, tokenizer: Any) -> Action | None:
            self.rec.see(event)
            action = script(event, self.rec)
            self.rec.acted(action)
            return action

    _Scripted.hold_back = hold_back
    _Scripted.name = name
    return ModDefinition(name, _Scripted, hold_back)


def at(
    event_cls: type, step: int, action: Action, *, forced: bool | None = None
) -> Callable[[Any, Recorder], Action | None]:
    """Script: return ``action`` once per request, at ``event_cls`` of ``step``."""

    def script(event: Any, rec: Recorder) -> Action | None:
        if rec.fired or not isinstance(event, event_cls) or event.step != step:
            return None
        if forced is not None and getattr(event, "forced", None) != forced:
            return None
        rec.fired = True
        return action

    return script


EVENTS = {"Prefilled": Prefilled, "ForwardPass": ForwardPass, "Sampled": Sampled, "Added": Added}
