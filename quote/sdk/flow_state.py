# SPDX-License-Identifier: Apache-2.0
"""Per-request state of a flow: the default :class:`FlowState`, and :func:`flow_state`.

A flow keeps one state object per request (one conversation turn). By default it is a
:class:`FlowState`; ``state_factory=`` (on :class:`~quote.sdk.flow.FlowEngine` and
:func:`~quote.sdk.flow.flow_mod`) makes any object instead, called with the request id
inside the request (so it may read :func:`~quote.sdk.context.get_conversation`). The
engine stores every answer in the state's ``answers`` dict when it has one, passes the
state to :class:`~quote.sdk.flow.Callback` functions, ``Question.assign`` functions and
a flow's ``summary_builder``, and makes it available to any other hook through
:func:`flow_state`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from quote.sdk.errors import QuoteSDKError

__all__ = ["FlowError", "FlowState", "bound_state", "flow_state", "record_answer"]

_CURRENT: ContextVar[Any] = ContextVar("quote_flow_state")
_UNSET = object()


class FlowError(QuoteSDKError, RuntimeError):
    """A flow cannot proceed (no EOS for a route that needs it, a runaway loop, ...)."""


@dataclass
class FlowState:
    """The default per-request state.

    Attributes:
        request_id: The request this state belongs to.
        answers: Every answer so far, by question name.
        data: Free space for the flow's own values (ids looked up, choices made, ...).
    """

    request_id: str
    answers: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


def flow_state() -> Any:
    """The state of the request whose flow is running (inside any flow hook).

    Raises:
        FlowError: Called outside a flow's handling of an event.
    """
    state = _CURRENT.get(_UNSET)
    if state is _UNSET:
        raise FlowError("flow_state() is only available while a flow handles an event")
    return state


@contextmanager
def bound_state(state: Any) -> Iterator[None]:
    """Make ``state`` what :func:`flow_state` returns for the duration of the block."""
    token = _CURRENT.set(state)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def record_answer(state: Any, name: str, answer: Any) -> None:
    """Store ``answer`` in ``state.answers`` when the state has such a dict."""
    answers = getattr(state, "answers", None)
    if isinstance(answers, dict):
        answers[name] = answer
