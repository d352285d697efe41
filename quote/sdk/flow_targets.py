# SPDX-License-Identifier: Apache-2.0
"""What a flow is made of: :class:`Question`, the route targets, and :class:`Flow` itself.

Targets: another :class:`Question` (re-entering asks again), :class:`Message` (force
text, go on), :class:`Summary` (force text, then EOS), :class:`Output` (the completion
becomes exactly this text), :class:`CallTool` (end with a tool call), :class:`Callback`
(run a function that returns any action or the next target), :class:`Stop` (EOS),
another :class:`Flow` (continue there) or ``None`` (the flow ends; the model continues
freely). Templates are ``str.format`` strings over the answers and assigned variables,
or callables of them. :mod:`quote.sdk.flow` runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from quote.sdk.selfprompt import Erase, SelfPrompt
from quote.sdk.selfprompt_config import TextSpec
from quote.sdk.strategies.base import _DEFAULT, Strategy

__all__ = [
    "CallTool",
    "Callback",
    "Flow",
    "Message",
    "Output",
    "Question",
    "Stop",
    "Summary",
    "Target",
    "Template",
    "render",
]

Template = str | Callable[[dict[str, Any]], Any]


def render(template: Template, env: dict[str, Any]) -> Any:
    """``template`` over ``env`` (a format string, or a callable of ``env``)."""
    return template(env) if callable(template) else template.format(**env)


@dataclass(frozen=True)
class Message:
    """Force ``text`` into the generation, then go to ``then``."""

    text: Template
    then: Target = None


@dataclass(frozen=True)
class Summary:
    """Force ``text`` (rendered over the answers), then end the request with EOS.

    Without ``text``, the running flow's ``summary_builder(state)`` writes it.
    """

    text: Template | None = None


@dataclass(frozen=True)
class Output:
    """End the request; the completion is exactly ``text`` (rendered)."""

    text: Template


@dataclass(frozen=True)
class CallTool:
    """End the request with a tool call; ``arguments`` is a mapping or a template."""

    name: str
    arguments: Mapping[str, Any] | Callable[[dict[str, Any]], Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stop:
    """End the request with EOS after what was generated."""


@dataclass(frozen=True)
class Callback:
    """Run ``fn(actions, state, tokenizer)`` and act on what it returns.

    ``actions`` is the event's :class:`~quote.sdk.builder.ActionBuilder` and ``state`` the
    request's flow state. ``fn`` returns:

    - a terminal action (``force_output``, ``tool_calls``, ``emit_error``): the request
      ends with it;
    - any other action (``force_tokens``, ``backtrack``, ...): it is applied, then the flow
      goes to ``then`` at the next event;
    - a target (a question, ``Output(...)``, another flow...): the flow goes there now;
    - ``None`` or ``noop()``: the flow goes to ``then`` now.
    """

    fn: Callable[[Any, Any, Any], Any]
    then: Target = None

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"Callback: fn must be callable, got {self.fn!r}")


class Question:
    """A question the model answers (or that is auto-answered), with routes on its answer."""

    def __init__(
        self,
        name: str,
        prompt: TextSpec,
        strategy: Strategy,
        *,
        completion: TextSpec = "",
        erase: Erase = "none",
        greedy: bool = False,
        temperature: float | None = None,
        end_token: int | None = _DEFAULT,
        auto: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> None:
        self.name = name
        self.selfprompt = SelfPrompt(
            prompt, strategy, completion, erase, greedy, temperature, end_token
        )
        self.auto = auto
        self.routes: list[tuple[Callable[[Any], bool], Target]] = []
        self.default: Target = None
        self.brancher: Callable[[Any, dict[str, Any]], Target] | None = None
        self.assigns: list[tuple[str | None, Callable[..., Any] | None]] = []

    def on(self, match: Any, target: Target) -> Question:
        """Route to ``target`` when the answer equals ``match`` (str), is in it (collection)
        or satisfies it (callable)."""
        if callable(match):
            pred = match
        elif isinstance(match, Collection) and not isinstance(match, str):
            options = list(match)
            pred = options.__contains__
        else:
            pred = match.__eq__
        self.routes.append((pred, target))
        return self

    def then(self, target: Target) -> Question:
        """The route when no ``.on`` matches and ``.branch`` gives nothing."""
        self.default = target
        return self

    otherwise = then

    def branch(self, fn: Callable[[Any, dict[str, Any]], Target]) -> Question:
        """Compute the route: ``fn(answer, variables) -> target`` (``None`` = fall through)."""
        self.brancher = fn
        return self

    def assign(
        self, var: str | Callable[[Any, Any], Any], transform: Callable[[Any], Any] | None = None
    ) -> Question:
        """Store the answer (optionally transformed) as variable ``var``; or, given a
        function, call ``fn(state, answer)`` with the request's flow state."""
        if callable(var):
            if transform is not None:
                raise TypeError("Question.assign: a function takes no transform")
            self.assigns.append((None, var))
        else:
            self.assigns.append((var, transform))
        return self

    def refresh_responses(self, responses: Iterable[str], idx: int | None = None) -> Question:
        """Ask with new choices from now on (see :meth:`SelfPrompt.refresh_responses`).

        This changes the question for every later request; for choices that differ per
        request, build the question inside a branch or a :class:`Callback`.
        """
        self.selfprompt = self.selfprompt.refresh_responses(responses, idx)
        return self

    def route(self, answer: Any, env: dict[str, Any]) -> Target:
        """The next target for ``answer``."""
        for pred, target in self.routes:
            if pred(answer):
                return target
        if self.brancher is not None:
            target = self.brancher(answer, env)
            if target is not None:
                return target
        return self.default

    def __repr__(self) -> str:
        return f"Question({self.name!r})"


@dataclass(frozen=True)
class Flow:
    """A flow definition: where it starts and when.

    Attributes:
        start: The first target (usually a question).
        trigger: ``None`` starts right after the prompt (or, in an engine with several
            flows, as soon as the flows before it end); a string starts when the
            generated text ends with it.
        max_transitions: Routes taken per request before failing (loop guard).
        name: The flow's name (distinct within one engine).
        summary_builder: Writes the text of a ``Summary()`` without text, from the state.
    """

    start: Target
    trigger: str | None = None
    max_transitions: int = 100
    name: str = "flow"
    summary_builder: Callable[[Any], str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Flow: name must be a non-empty string, got {self.name!r}")
        if self.summary_builder is not None and not callable(self.summary_builder):
            raise TypeError(f"Flow: summary_builder must be callable, got {self.summary_builder!r}")
        if isinstance(self.max_transitions, bool) or not isinstance(self.max_transitions, int):
            raise TypeError(f"Flow: max_transitions must be an int, got {self.max_transitions!r}")
        if self.max_transitions < 1:
            raise ValueError(f"Flow: max_transitions must be >= 1, got {self.max_transitions}")

    def reachable(self) -> list[Target]:
        """Targets statically reachable from :attr:`start` (branches are dynamic)."""
        seen: list[Target] = []
        todo: list[Target] = [self.start]
        while todo:
            t = todo.pop()
            if any(t is s for s in seen):
                continue
            seen.append(t)
            if isinstance(t, Question):
                todo.extend(target for _, target in t.routes)
                todo.append(t.default)
            elif isinstance(t, Message | Callback):
                todo.append(t.then)
            elif isinstance(t, Flow):
                todo.append(t.start)
        return seen


Target = Question | Message | Summary | Output | CallTool | Callback | Stop | Flow | None
TARGET_TYPES = (Question, Message, Summary, Output, CallTool, Callback, Stop, Flow)
"""The classes a route may lead to (besides ``None``)."""
