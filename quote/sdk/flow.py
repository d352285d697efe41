# SPDX-License-Identifier: Apache-2.0
"""The Flow engine: questions the model answers inside its generation, and routes between them.

Example::

    size = Question("size", "\\nSize? ", Choices(["small", "large"]), completion="\\n")
    done = Output("You chose {size}.")
    size.on("small", done).otherwise(Message("Large it is.\\n"))
    FLOW = flow_mod(Flow(size))

A :class:`Question` asks with a :class:`~quote.sdk.selfprompt.SelfPrompt` and
routes on its answer: ``.on(match, target)`` in order, then ``.branch(fn)``,
then ``.then(target)`` / ``.otherwise(target)``. The targets are in
:mod:`quote.sdk.flow_targets`: questions, :class:`Message`, :class:`Summary`,
:class:`Output`, :class:`CallTool`, :class:`Callback` (a function returning any
action), :class:`Stop`, another :class:`Flow`, or ``None``. One engine runs one
flow or several (each with its own trigger, at most once per request) and keeps a
state object per request (:mod:`quote.sdk.flow_state`; ``state_factory=`` makes a
custom one). Routes ending with EOS fail clearly when the tokenizer has none.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from quote.sdk.actions import Action
from quote.sdk.builder import ActionBuilder
from quote.sdk.context import current_request
from quote.sdk.events import Added, Event, Prefilled
from quote.sdk.flow_endings import callback_outcome, check_eos, final_action, needs_eos
from quote.sdk.flow_state import FlowError, FlowState, bound_state, flow_state, record_answer
from quote.sdk.flow_targets import (
    Callback,
    CallTool,
    Flow,
    Message,
    Output,
    Question,
    Stop,
    Summary,
    Target,
    Template,
    render,
)
from quote.sdk.mod import DEFAULT_HOLD_BACK, Mod, ModDefinition
from quote.sdk.selfprompt import SelfPromptRun
from quote.sdk.tokenize import tokenize

__all__ = [
    "CallTool",
    "Callback",
    "Flow",
    "FlowEngine",
    "FlowError",
    "FlowState",
    "Message",
    "Output",
    "Question",
    "Stop",
    "Summary",
    "Target",
    "Template",
    "flow_mod",
    "flow_state",
]

logger = logging.getLogger(__name__)

StateFactory = Callable[[str], Any]


@dataclass
class _State:
    user: Any
    active: Flow | None = None
    ran: list[Flow] = field(default_factory=list)
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
    """Drives one or several :class:`Flow` for every request of a mod; state is per request id.

    With several flows, those without a trigger run one after the other from the prompt
    on; a flow with a trigger starts when the generated text ends with it while no flow
    runs. Each flow runs at most once per request. State is created at ``Prefilled``
    (``state_factory(request_id)``, default :class:`FlowState`) and evicted when the
    request ends: by :meth:`end` (the flow mod's ``on_end``), when the flow ends the
    request, or when the engine frees the request's ``RequestInfo``.
    """

    def __init__(self, flow: Flow | Sequence[Flow], *, state_factory: StateFactory | None = None):
        flows = (flow,) if isinstance(flow, Flow) else tuple(flow)
        if not flows or not all(isinstance(f, Flow) for f in flows):
            raise TypeError("FlowEngine: give a Flow or a non-empty sequence of Flows")
        names = [f.name for f in flows]
        if len(flows) > 1 and len(set(names)) != len(names):
            raise ValueError(f"FlowEngine: flow names must be distinct, got {names}")
        self.flows = flows
        self.flow = flows[0]
        self.state_factory: StateFactory = state_factory or FlowState
        self._states: dict[str, _State] = {}

    def __len__(self) -> int:
        return len(self._states)

    def state(self, request_id: str) -> Any:
        """The flow state of a running request (``KeyError`` when it has none)."""
        return self._states[request_id].user

    def end(self, request_id: str) -> None:
        """Forget a request's state."""
        self._states.pop(request_id, None)

    def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
        """The flow's action for ``event``."""
        rid = event.request_id
        if isinstance(event, Prefilled):
            check_eos(self.flows, tokenizer)
            self._states[rid] = _State(self.state_factory(rid))
            info = current_request.get()
            if info is not None:
                weakref.finalize(info, self._states.pop, rid, None)
        st = self._states.get(rid)
        if st is None or st.finished:
            return None
        with bound_state(st.user):
            return self._handle(st, event, actions, tokenizer)

    def _handle(
        self, st: _State, event: Event, actions: ActionBuilder, tokenizer: Any
    ) -> Action | None:
        if st.active is None:
            flow = self._next_flow(st, event, tokenizer)
            return None if flow is None else self._enter(st, flow, event, actions, tokenizer)
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

    def _next_flow(self, st: _State, event: Event, tokenizer: Any) -> Flow | None:
        """The flow to start at ``event``, if any (an untriggered one, else a trigger seen)."""
        waiting = [f for f in self.flows if not any(f is r for r in st.ran)]
        for f in waiting:
            if f.trigger is None:
                return f
        if not waiting or not isinstance(event, Added):
            return None
        text = "".join(tokenizer.decode([t]) for t in event.tokens)
        keep = 4 * max(len(f.trigger or "") for f in waiting)
        st.tail = (st.tail + text)[-keep:]
        for f in waiting:
            if f.trigger is not None and st.tail.endswith(f.trigger):
                st.tail = ""
                return f
        return None

    def _answered(self, st: _State) -> Target:
        assert st.run is not None and st.question is not None
        q, answer = st.question, st.run.answer
        st.answers[q.name] = answer
        record_answer(st.user, q.name, answer)
        for var, transform in q.assigns:
            if var is None:
                assert transform is not None
                transform(st.user, answer)
            else:
                st.variables[var] = transform(answer) if transform else answer
        st.run, st.question = None, None
        return q.route(answer, st.env())

    def _enter(
        self, st: _State, target: Target, event: Event, actions: ActionBuilder, tokenizer: Any
    ) -> Action | None:
        st.transitions += 1
        limit = (st.active or self.flow).max_transitions
        if st.transitions > limit:
            raise FlowError(f"flow took more than {limit} routes (a loop?)")
        if target is None:
            return self._flow_ended(st, event, actions, tokenizer)
        if needs_eos(target) and getattr(tokenizer, "eos_token_id", None) is None:
            raise FlowError(f"route {target!r} needs an EOS token and the tokenizer has none")
        if isinstance(target, Flow):
            logger.debug("flow %r starts (request %s)", target.name, event.request_id)
            st.active = target
            st.ran.append(target)
            return self._enter(st, target.start, event, actions, tokenizer)
        if isinstance(target, Question):
            return self._ask(st, target, event, actions, tokenizer)
        if isinstance(target, Message):
            tokens = tokenize(str(render(target.text, st.env())), tokenizer)
            if not tokens:
                return self._enter(st, target.then, event, actions, tokenizer)
            st.pending, st.has_pending = target.then, True
            return actions.force_tokens(tokens)
        if isinstance(target, Callback):
            return self._callback(st, target, event, actions, tokenizer)
        self.end(event.request_id)  # Output, CallTool, Summary or Stop: the request ends
        st.finished = True
        return final_action(target, st.env(), st.user, st.active or self.flow, actions, tokenizer)

    def _flow_ended(
        self, st: _State, event: Event, actions: ActionBuilder, tokenizer: Any
    ) -> Action | None:
        """The active flow ended with ``None``: the next untriggered flow starts, if any."""
        st.active = None
        waiting = [f for f in self.flows if not any(f is r for r in st.ran)]
        if not waiting:
            st.finished = True
        nxt = next((f for f in waiting if f.trigger is None), None)
        return None if nxt is None else self._enter(st, nxt, event, actions, tokenizer)

    def _ask(
        self, st: _State, q: Question, event: Event, actions: ActionBuilder, tokenizer: Any
    ) -> Action | None:
        auto = q.auto(st.env()) if q.auto is not None else None
        st.question = q
        st.run = q.selfprompt.begin(tokenizer, auto)
        action = st.run.start(event, actions)
        if st.run.done and action is None:  # an empty auto-answer: nothing to wait for
            return self._enter(st, self._answered(st), event, actions, tokenizer)
        return action

    def _callback(
        self, st: _State, target: Callback, event: Event, actions: ActionBuilder, tokenizer: Any
    ) -> Action | None:
        kind, value = callback_outcome(target, target.fn(actions, st.user, tokenizer))
        if kind == "next":
            return self._enter(st, target.then, event, actions, tokenizer)
        if kind == "route":
            return self._enter(st, value, event, actions, tokenizer)
        if kind == "end":
            self.end(event.request_id)
            st.finished = True
        else:
            st.pending, st.has_pending = target.then, True
        return cast(Action, value)


def flow_mod(
    flow: Flow | Sequence[Flow],
    *,
    name: str = "flow",
    hold_back: int = DEFAULT_HOLD_BACK,
    state_factory: StateFactory | None = None,
) -> ModDefinition:
    """A mod running ``flow`` (or several flows); one :class:`FlowEngine` shared by its
    per-request instances. ``state_factory(request_id)`` makes each request's state."""
    engine = FlowEngine(flow, state_factory=state_factory)

    class _FlowMod(Mod):
        def handle(self, event: Event, actions: ActionBuilder, tokenizer: Any) -> Action | None:
            return engine.handle(event, actions, tokenizer)

        def on_end(self, request: Any) -> None:
            engine.end(request.request_id)

    _FlowMod.engine = engine  # type: ignore[attr-defined]
    definition = ModDefinition(name, _FlowMod, hold_back)
    definition.engine = engine  # type: ignore[attr-defined]
    return definition
