# SPDX-License-Identifier: Apache-2.0
"""SelfPrompt: ask the model a question inside its own generation.

A :class:`SelfPrompt` forces a prompt text, constrains the answer with a
strategy, optionally forces a completion suffix, then erases nothing, the
prompt (keeping the answer and suffix) or everything. Per request, call
:meth:`SelfPrompt.begin` for a :class:`SelfPromptRun` and feed it events::

    run = ASK.begin(tokenizer)
    action = run.start(event, actions)        # forces the prompt
    ...
    if run.active:
        return run.handle(event, actions)     # until run.done
    run.answer                                # the parsed answer
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from quote.sdk.actions import Action
from quote.sdk.builder import ActionBuilder
from quote.sdk.errors import QuoteSDKError
from quote.sdk.events import Added, Event, ForwardPass, Sampled
from quote.sdk.strategies.base import _DEFAULT, Strategy, StrategyError
from quote.sdk.strategies.runner import StrategyRunner
from quote.sdk.tokenize import tokenize

__all__ = ["Erase", "SelfPrompt", "SelfPromptError", "SelfPromptRun"]

logger = logging.getLogger(__name__)

Erase = Literal["none", "prompt", "all"]


class SelfPromptError(QuoteSDKError, RuntimeError):
    """A self-prompt was driven out of order."""


@dataclass(frozen=True)
class SelfPrompt:
    """An immutable self-prompt description.

    Attributes:
        prompt: Text forced before the answer (may be empty).
        strategy: Constrains the answer.
        completion: Text forced after the answer (may be empty).
        erase: ``"none"`` keeps everything; ``"prompt"`` removes the prompt and
            keeps answer and completion; ``"all"`` removes all three.
        greedy: Answer at temperature 0.
        temperature: Answer temperature (ignored when ``greedy``); ``None`` = request's.
        end_token: Token ending an answer that could continue (default: EOS).
    """

    prompt: str
    strategy: Strategy
    completion: str = ""
    erase: Erase = "none"
    greedy: bool = False
    temperature: float | None = None
    end_token: int | None = _DEFAULT

    def __post_init__(self) -> None:
        if self.erase not in ("none", "prompt", "all"):
            raise ValueError(f"SelfPrompt: erase must be none, prompt or all, not {self.erase!r}")

    def begin(self, tokenizer: Any, auto_answer: str | None = None) -> SelfPromptRun:
        """A fresh run for one request (``auto_answer`` skips asking the model)."""
        return SelfPromptRun(self, tokenizer, auto_answer)


class SelfPromptRun:
    """One execution of a :class:`SelfPrompt` (per request, never shared)."""

    def __init__(self, spec: SelfPrompt, tokenizer: Any, auto_answer: str | None = None) -> None:
        self.spec = spec
        temperature = 0.0 if spec.greedy else spec.temperature
        self.runner = StrategyRunner(
            spec.strategy, tokenizer, end_token=spec.end_token, temperature=temperature
        )
        self.prompt_tokens = tokenize(spec.prompt, tokenizer) if spec.prompt else []
        self.completion_tokens = tokenize(spec.completion, tokenizer) if spec.completion else []
        self.auto_tokens: list[int] | None = None
        if auto_answer is not None:
            self.auto_tokens = tokenize(auto_answer, tokenizer)
            self.runner.added(self.auto_tokens)
            if not self.runner.state.complete:
                raise StrategyError(f"auto answer {auto_answer!r} does not complete the strategy")
            self.runner.ended = True
        self.phase = "idle"
        self.entered = 0  # tokens that entered the sequence during this run
        self._expect = 0  # forced tokens still to arrive in the current phase

    @property
    def active(self) -> bool:
        """Started and not done."""
        return self.phase not in ("idle", "done")

    @property
    def done(self) -> bool:
        """Finished (answer known, completion forced, erasure requested)."""
        return self.phase == "done"

    @property
    def answer(self) -> Any:
        """The parsed answer (``None`` before it is complete)."""
        return self.runner.value() if self.runner.done else None

    @property
    def answer_tokens(self) -> list[int]:
        """The answer's token ids."""
        return list(self.runner.state.tokens)

    def start(self, event: Event, actions: ActionBuilder) -> Action | None:
        """Begin at ``event``: returns the action that forces the prompt (or the first mask)."""
        if self.phase != "idle":
            raise SelfPromptError("SelfPromptRun.start called twice")
        forced = list(self.prompt_tokens)
        if self.auto_tokens is not None:
            forced += self.auto_tokens + self.completion_tokens
            self.phase = "auto"
        elif forced:
            self.phase = "prompt"
        else:
            self.phase = "answer"
            return self.runner.forward(event, actions) if isinstance(event, ForwardPass) else None
        if not forced:
            return self._finish(event, actions)
        self._expect = len(forced)
        return actions.force_tokens(forced)

    def handle(self, event: Event, actions: ActionBuilder) -> Action | None:
        """The action for ``event`` while the run is active."""
        if not self.active:
            raise SelfPromptError(f"SelfPromptRun.handle called while {self.phase}")
        if isinstance(event, Added):
            return self._added(event, actions)
        if self.phase != "answer":
            return None
        if isinstance(event, ForwardPass):
            return self.runner.forward(event, actions)
        if isinstance(event, Sampled) and self.runner.sampled(event.token):
            return self._after_answer(event, actions)
        return None

    def _added(self, event: Added, actions: ActionBuilder) -> Action | None:
        self.entered += len(event.tokens)
        if self.phase in ("prompt", "suffix", "auto"):
            self._expect -= len(event.tokens)
            if self._expect > 0:
                return None
            if self.phase == "prompt":
                self.phase = "answer"
                return None
            return self._finish(event, actions)
        self.runner.added(event.tokens)
        if self.runner.done:
            return self._after_answer(event, actions)
        forced = [] if event.forced else self.runner.forced_now()
        return actions.force_tokens(forced) if forced else None

    def _after_answer(self, event: Event, actions: ActionBuilder) -> Action | None:
        if self.completion_tokens:
            self.phase = "suffix"
            self._expect = len(self.completion_tokens)
            return actions.force_tokens(self.completion_tokens)
        return self._finish(event, actions)

    def _finish(self, event: Event, actions: ActionBuilder) -> Action | None:
        self.phase = "done"
        keep: list[int] = []
        if self.spec.erase == "prompt":
            keep = self.answer_tokens + self.completion_tokens
        if self.spec.erase != "none":
            return actions.backtrack(self.entered, keep or None)
        if isinstance(event, Sampled):
            return actions.backtrack(0)  # drop the end token that closed the answer
        return None
