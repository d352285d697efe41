# SPDX-License-Identifier: Apache-2.0
"""How a flow ends a request (:func:`final_action`) and what a :class:`Callback` returned.

``Output``, ``CallTool``, ``Summary`` and ``Stop`` end the request; ``Summary`` and
``Stop`` need the tokenizer's EOS (:func:`needs_eos`, :func:`check_eos`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast

from quote.sdk.actions import TERMINAL_ACTIONS, Action, Noop
from quote.sdk.builder import ActionBuilder
from quote.sdk.flow_state import FlowError
from quote.sdk.flow_targets import (
    TARGET_TYPES,
    Callback,
    CallTool,
    Flow,
    Output,
    Stop,
    Summary,
    Target,
    render,
)
from quote.sdk.tokenize import tokenize

__all__ = ["Outcome", "callback_outcome", "check_eos", "final_action", "needs_eos"]

Outcome = Literal["next", "end", "route", "action"]
"""What a callback's result means: go to ``then`` now, end the request with it, route to
it, or apply it and go to ``then`` at the next event."""


def needs_eos(target: Target) -> bool:
    """Whether ``target`` ends the request with the tokenizer's EOS."""
    return isinstance(target, Stop | Summary)


def check_eos(flows: Sequence[Flow], tokenizer: Any) -> None:
    """Fail before the request starts when a route needs an EOS the tokenizer lacks."""
    if getattr(tokenizer, "eos_token_id", None) is None:
        bad = [t for f in flows for t in f.reachable() if needs_eos(t)]
        if bad:
            raise FlowError(
                f"route {bad[0]!r} ends the request with EOS, and the tokenizer has no "
                "eos_token_id; use Output(...) or give the tokenizer an EOS token"
            )


def _summary(target: Summary, env: dict[str, Any], state: Any, flow: Flow) -> str:
    if target.text is not None:
        return str(render(target.text, env))
    if flow.summary_builder is None:
        raise FlowError(f"Summary() without text needs a summary_builder on flow {flow.name!r}")
    return str(flow.summary_builder(state))


def final_action(
    target: Target,
    env: dict[str, Any],
    state: Any,
    flow: Flow,
    actions: ActionBuilder,
    tokenizer: Any,
) -> Action:
    """The action of ``Output``, ``CallTool``, ``Summary`` or ``Stop`` (``flow`` is running)."""
    if isinstance(target, Output):
        return actions.force_output(tokenize(str(render(target.text, env)), tokenizer))
    if isinstance(target, CallTool):
        args = target.arguments
        rendered = render(args, env) if callable(args) else dict(args)
        return actions.tool_calls([{"name": target.name, "arguments": rendered}])
    if not isinstance(target, Summary | Stop):
        raise FlowError(f"route {target!r} is not a target")
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise FlowError(f"route {target!r} needs an EOS token and the tokenizer has none")
    text = _summary(target, env, state, flow) if isinstance(target, Summary) else ""
    return actions.force_tokens(tokenize(text, tokenizer) + [int(eos)])


def callback_outcome(callback: Callback, result: Any) -> tuple[Outcome, Any]:
    """Classify what ``callback.fn`` returned (see :class:`Callback`)."""
    if result is None or isinstance(result, Noop):
        return "next", None
    if isinstance(result, TERMINAL_ACTIONS):
        return "end", cast(Action, result)
    if isinstance(result, TARGET_TYPES):
        return "route", result
    if isinstance(result, Action):
        return "action", result
    name = getattr(callback.fn, "__name__", callback.fn)
    raise FlowError(f"Callback {name!r} returned {result!r}: expected an action, a target or None")
