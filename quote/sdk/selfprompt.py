# SPDX-License-Identifier: Apache-2.0
"""SelfPrompt: ask the model a question inside its own generation.

A :class:`SelfPrompt` forces a prompt text, constrains the answer with a
strategy, optionally forces a completion suffix, then erases nothing, the
prompt (keeping the answer and suffix) or everything. Prompt and completion are
text, token ids, or the original SDK's dicts (``{"text": ...}``, ``{"suffix": ...,
"force": ...}``). :func:`self_prompt_mod` runs one at the start of every request;
:meth:`SelfPrompt.refresh_responses` swaps the choices. Per request, call
:meth:`SelfPrompt.begin` for a :class:`SelfPromptRun` and feed it events::

    run = ASK.begin(tokenizer)
    action = run.start(event, actions)        # forces the prompt
    ...
    if run.active:
        return run.handle(event, actions)     # until run.done
    run.answer                                # the parsed answer
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from quote.sdk.actions import Action
from quote.sdk.builder import ActionBuilder
from quote.sdk.errors import QuoteSDKError
from quote.sdk.events import Added, Event, ForwardPass, Sampled
from quote.sdk.mod import DEFAULT_HOLD_BACK, Mod, ModDefinition
from quote.sdk.selfprompt_config import Text, TextSpec, normalize_text, text_tokens, with_responses
from quote.sdk.strategies.base import _DEFAULT, Strategy, StrategyError
from quote.sdk.strategies.runner import StrategyRunner
from quote.sdk.tokenize import tokenize

__all__ = ["Erase", "SelfPrompt", "SelfPromptError", "SelfPromptRun", "self_prompt_mod"]

logger = logging.getLogger(__name__)

Erase = Literal["none", "prompt", "all"]


class SelfPromptError(QuoteSDKError, RuntimeError):
    """A self-prompt was driven out of order."""


@dataclass(frozen=True)
class SelfPrompt:
    """An immutable self-prompt description.

    Attributes:
        prompt: Text forced before the answer (may be empty); token ids, or a dict
            ``{"text": str}`` / ``{"tokens": [ids]}``, are accepted too.
        strategy: Constrains the answer.
        completion: Text forced after the answer (may be empty); token ids, or a dict
            ``{"suffix": str or [ids], "force": bool}`` (``force=False``: no suffix).
        erase: ``"none"`` keeps everything; ``"prompt"`` removes the prompt and
            keeps answer and completion; ``"all"`` removes all three.
        greedy: Answer at temperature 0.
        temperature: Answer temperature (ignored when ``greedy``); ``None`` = request's.
        end_token: Token ending an answer that could continue (default: EOS).
    """

    prompt: TextSpec
    strategy: Strategy
    completion: TextSpec = ""
    erase: Erase = "none"
    greedy: bool = False
    temperature: float | None = None
    end_token: int | None = _DEFAULT

    def __post_init__(self) -> None:
        if self.erase not in ("none", "prompt", "all"):
            raise ValueError(f"SelfPrompt: erase must be none, prompt or all, not {self.erase!r}")
        object.__setattr__(self, "prompt", normalize_text(self.prompt, "prompt"))
        object.__setattr__(self, "completion", normalize_text(self.completion, "completion"))

    def refresh_responses(self, responses: Iterable[str], idx: int | None = None) -> SelfPrompt:
        """A copy whose choices are ``responses`` (this one is unchanged: it is immutable).

        The strategy must be ``Choices``, or a ``ListOf`` of choices (``idx`` picks the
        position of a per-position list). Runs already begun keep their choices; use
        :meth:`SelfPromptRun.refresh_responses` to change one before its answer starts.
        """
        return dataclasses.replace(self, strategy=with_responses(self.strategy, responses, idx))

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
        self.tokenizer = tokenizer
        self.prompt_tokens = text_tokens(_text(spec.prompt), tokenizer)
        self.completion_tokens = text_tokens(_text(spec.completion), tokenizer)
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
        self._asked = False  # a mask of the answer went out

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

    def refresh_responses(self, responses: Iterable[str], idx: int | None = None) -> None:
        """Swap this run's choices for ``responses`` before its answer starts.

        Allowed until the first answer token enters the sequence (while idle or while the
        prompt is being forced); later, or for an auto-answered run, raises
        :class:`SelfPromptError`. See :meth:`SelfPrompt.refresh_responses` for ``idx``.
        """
        if self.auto_tokens is not None or self.phase not in ("idle", "prompt", "answer"):
            raise SelfPromptError(f"refresh_responses: the answer is already given ({self.phase})")
        if self._asked or self.runner.state.tokens or self.runner.done:
            raise SelfPromptError("refresh_responses: the answer has started")
        self.spec = self.spec.refresh_responses(responses, idx)
        self.runner = StrategyRunner(
            self.spec.strategy,
            self.tokenizer,
            end_token=self.runner.end_token,
            temperature=self.runner.temperature,
        )

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
            if not isinstance(event, ForwardPass):
                return None
            self._asked = True
            return self.runner.forward(event, actions)
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
            self._asked = True
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


def self_prompt_mod(
    prompt: TextSpec,
    strategy: Strategy,
    *,
    completion: TextSpec | None = None,
    erase: Erase = "none",
    greedy: bool = False,
    temperature: float | None = None,
    end_token: int | None = _DEFAULT,
    on_answer: Callable[[Any], None] | None = None,
    name: str = "self_prompt",
    hold_back: int = DEFAULT_HOLD_BACK,
) -> ModDefinition:
    """A mod that asks one :class:`SelfPrompt` right after each request's prompt.

    The prompt is forced, the answer constrained by ``strategy``, the completion forced,
    then ``erase`` applies; afterwards the model continues freely. ``prompt`` and
    ``completion`` take text, token ids or the original SDK's dicts. ``on_answer``, when
    given, receives each parsed answer (it runs inside the request, like the mod).
    """
    suffix = "" if completion is None else completion
    spec = SelfPrompt(prompt, strategy, suffix, erase, greedy, temperature, end_token)

    class _SelfPromptMod(Mod):
        def __init__(self) -> None:
            self.run: SelfPromptRun | None = None

        def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
            if self.run is None:
                self.run = spec.begin(tokenizer)
                return self._after(self.run.start(event, actions))
            if not self.run.active:
                return None
            return self._after(self.run.handle(event, actions))

        def _after(self, action: Action | None) -> Action | None:
            assert self.run is not None
            if self.run.done:
                logger.debug("self_prompt %s answered %r", name, self.run.answer)
                if on_answer is not None:
                    on_answer(self.run.answer)
            return action

    _SelfPromptMod.spec = spec  # type: ignore[attr-defined]
    return ModDefinition(name, _SelfPromptMod, hold_back)


def _text(value: TextSpec) -> Text:
    """A normalised field (``__post_init__`` made it text or a tuple of ids)."""
    assert isinstance(value, str | tuple)
    return value
