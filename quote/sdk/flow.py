# SPDX-License-Identifier: Apache-2.0
"""The Flow engine: questions the model answers inside its generation, and routes between them.

Example::

    size = Question("size", "\\nSize? ", Choices(["small", "large"]), completion="\\n")
    done = Output("You chose {size}.")
    size.on("small", done).otherwise(Message("Large it is.\\n"))
    FLOW = flow_mod(Flow(size))

A :class:`Question` asks with a :class:`~quote.sdk.selfprompt.SelfPrompt` and
routes on its answer: ``.on(match, target)`` in order, then ``.branch(fn)``,
then ``.then(target)`` / ``.otherwise(target)``. Targets: another question
(re-entering asks again), :class:`Message` (force text, go on), :class:`Summary`
(force text, then EOS), :class:`Output` (the completion becomes exactly this
text), :class:`CallTool` (end with a tool call), :class:`Stop` (EOS) or ``None``
(the flow ends; the model continues freely). Templates are ``str.format``
strings over the answers and assigned variables, or callables of them.
Routes ending with EOS fail clearly when the tokenizer has none.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from quote.sdk.actions import Action
from quote.sdk.builder import ActionBuilder
from quote.sdk.context import current_request
from quote.sdk.errors import QuoteSDKError
from quote.sdk.events import Added, Event, Prefilled
from quote.sdk.mod import DEFAULT_HOLD_BACK, Mod, ModDefinition
from quote.sdk.selfprompt import Erase, SelfPrompt, SelfPromptRun
from quote.sdk.strategies.base import _DEFAULT, Strategy
from quote.sdk.tokenize import tokenize

__all__ = [
    "CallTool",
    "Flow",
    "FlowEngine",
    "FlowError",
    "Message",
    "Output",
    "Question",
    "Stop",
    "Summary",
    "Target",
    "flow_mod",
]

logger = logging.getLogger(__name__)

Template = str | Callable[[dict[str, Any]], Any]


class FlowError(QuoteSDKError, RuntimeError):
    """A flow cannot proceed (no EOS for a route that needs it, a runaway loop, ...)."""


def _render(template: Template, env: dict[str, Any]) -> Any:
    return template(env) if callable(template) else template.format(**env)


@dataclass(frozen=True)
class Message:
    """Force ``text`` into the generation, then go to ``then``."""

    text: Template
    then: Target = None


@dataclass(frozen=True)
class Summary:
    """Force ``text`` (rendered over the answers), then end the request with EOS."""

    text: Template


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


class Question:
    """A question the model answers (or that is auto-answered), with routes on its answer."""

    def __init__(
        self,
        name: str,
        prompt: str,
        strategy: Strategy,
        *,
        completion: str = "",
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
        self.assigns: list[tuple[str, Callable[[Any], Any] | None]] = []

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

    def assign(self, var: str, transform: Callable[[Any], Any] | None = None) -> Question:
        """Store the answer (optionally transformed) as variable ``var``."""
        self.assigns.append((var, transform))
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


Target = Question | Message | Summary | Output | CallTool | Stop | None


def _needs_eos(target: Target) -> bool:
    return isinstance(target, Stop | Summary)


@dataclass(frozen=True)
class Flow:
    """A flow definition: where it starts and when.

    Attributes:
        start: The first target (usually a question).
        trigger: ``None`` starts right after the prompt; a string starts when the
            generated text ends with it.
        max_transitions: Routes taken per request before failing (loop guard).
    """

    start: Target
    trigger: str | None = None
    max_transitions: int = 100

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
            elif isinstance(t, Message):
                todo.append(t.then)
        return seen


@dataclass
class _State:
    started: bool = False
    finished: bool = False
    answers: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    run: SelfPromptRun | None = None
    question: Question | None = None
    pending: Target = None
    has_pending: bool = False
    transitions: int = 0
    tail: str = ""

    def env(self) -> dict[str, Any]:
        return {**self.answers, **self.variables}


class FlowEngine:
    """Drives one :class:`Flow` for every request of a mod; state is per request id.

    State is created at ``Prefilled`` and evicted when the request ends: by
    :meth:`end` (the flow mod's ``on_end``), when the flow ends the request, or
    when the engine frees the request's ``RequestInfo``.
    """

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self._states: dict[str, _State] = {}

    def __len__(self) -> int:
        return len(self._states)

    def end(self, request_id: str) -> None:
        """Forget a request's state."""
        self._states.pop(request_id, None)

    def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
        """The flow's action for ``event``."""
        rid = event.request_id
        if isinstance(event, Prefilled):
            self._check_eos(tokenizer)
            self._states[rid] = _State()
            info = current_request.get()
            if info is not None:
                weakref.finalize(info, self._states.pop, rid, None)
        st = self._states.get(rid)
        if st is None or st.finished:
            return None
        if not st.started:
            if self.flow.trigger is not None:
                if not isinstance(event, Added):
                    return None
                text = "".join(tokenizer.decode([t]) for t in event.tokens)
                st.tail = (st.tail + text)[-4 * len(self.flow.trigger) :]
                if not st.tail.endswith(self.flow.trigger):
                    return None
            st.started = True
            return self._enter(st, self.flow.start, event, actions, tokenizer)
        if st.run is not None:
            action = st.run.handle(event, actions)
            if not st.run.done:
                return action
            target = self._answered(st)
            if action is not None:
                st.pending, st.has_pending = target, True
                return action
            return self._enter(st, target, event, actions, tokenizer)
        if st.has_pending:
            target, st.pending, st.has_pending = st.pending, None, False
            return self._enter(st, target, event, actions, tokenizer)
        return None

    def _check_eos(self, tokenizer: Any) -> None:
        if getattr(tokenizer, "eos_token_id", None) is None:
            bad = [t for t in self.flow.reachable() if _needs_eos(t)]
            if bad:
                raise FlowError(
                    f"route {bad[0]!r} ends the request with EOS, and the tokenizer has no "
                    "eos_token_id; use Output(...) or give the tokenizer an EOS token"
                )

    def _answered(self, st: _State) -> Target:
        assert st.run is not None and st.question is not None
        q, answer = st.question, st.run.answer
        st.answers[q.name] = answer
        for var, transform in q.assigns:
            st.variables[var] = transform(answer) if transform else answer
        st.run, st.question = None, None
        return q.route(answer, st.env())

    def _enter(
        self, st: _State, target: Target, event: Event, actions: ActionBuilder, tokenizer: Any
    ) -> Action | None:
        st.transitions += 1
        if st.transitions > self.flow.max_transitions:
            raise FlowError(f"flow took more than {self.flow.max_transitions} routes (a loop?)")
        rid = event.request_id
        if target is None:
            st.finished = True
            return None
        if _needs_eos(target) and getattr(tokenizer, "eos_token_id", None) is None:
            raise FlowError(f"route {target!r} needs an EOS token and the tokenizer has none")
        if isinstance(target, Question):
            auto = target.auto(st.env()) if target.auto is not None else None
            st.question = target
            st.run = target.selfprompt.begin(tokenizer, auto)
            action = st.run.start(event, actions)
            if st.run.done:  # an empty auto-answer flow: nothing to wait for
                return (
                    action
                    if action is not None
                    else self._enter(st, self._answered(st), event, actions, tokenizer)
                )
            return action
        if isinstance(target, Message):
            tokens = tokenize(str(_render(target.text, st.env())), tokenizer)
            if not tokens:
                return self._enter(st, target.then, event, actions, tokenizer)
            st.pending, st.has_pending = target.then, True
            return actions.force_tokens(tokens)
        self.end(rid)
        st.finished = True
        if isinstance(target, Output):
            return actions.force_output(tokenize(str(_render(target.text, st.env())), tokenizer))
        if isinstance(target, CallTool):
            args = target.arguments
            rendered = _render(args, st.env()) if callable(args) else dict(args)
            return actions.tool_calls([{"name": target.name, "arguments": rendered}])
        eos = int(tokenizer.eos_token_id)
        if isinstance(target, Summary):
            return actions.force_tokens(
                tokenize(str(_render(target.text, st.env())), tokenizer) + [eos]
            )
        return actions.force_tokens([eos])


def flow_mod(
    flow: Flow, *, name: str = "flow", hold_back: int = DEFAULT_HOLD_BACK
) -> ModDefinition:
    """A mod running ``flow``; one :class:`FlowEngine` shared by its per-request instances."""
    engine = FlowEngine(flow)

    class _FlowMod(Mod):
        def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
            return engine.handle(event, actions, tokenizer)

        def on_end(self, request: Any) -> None:
            engine.end(request.request_id)

    _FlowMod.engine = engine  # type: ignore[attr-defined]
    definition = ModDefinition(name, _FlowMod, hold_back)
    definition.engine = engine  # type: ignore[attr-defined]
    return definition
