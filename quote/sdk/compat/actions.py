# SPDX-License-Identifier: Apache-2.0
"""Actions with the original engine's constructors and field names.

``Noop``, ``ForceTokens``, ``ForceOutput`` and ``Backtrack`` already match the
original (same constructor, same fields) and are Quote's own classes. The four
that differ are subclasses of Quote's actions that take the original's
arguments and add its field names:

- ``AdjustedLogits(logits, token_temp)``: ``logits`` may be ``(1, vocab)`` or a
  tensor with ``to_numpy()``; ``token_temp`` is Quote's ``temperature``.
- ``AdjustedPrefill(tokens, max_steps)``: ``max_steps=0`` means "unchanged", as
  the original's builder sent it.
- ``ToolCalls(payload)``: OpenAI-shaped calls; ``.tool_calls`` gives them back.
- ``EmitError(err_str)``: ``.err_str`` is Quote's ``message``.

The engine accepts only Quote's exact action classes, so :func:`to_quote_action`
turns any of these back into one before a result leaves the adapter.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from quote.sdk import actions as q
from quote.sdk.compat.events import as_logits_row
from quote.sdk.errors import InvalidActionError

__all__ = [
    "AdjustedLogits",
    "AdjustedPrefill",
    "Backtrack",
    "EmitError",
    "ForceOutput",
    "ForceTokens",
    "ModAction",
    "Noop",
    "ToolCalls",
    "parse_tool_calls",
    "to_quote_action",
]

Noop = q.Noop
ForceTokens = q.ForceTokens
ForceOutput = q.ForceOutput
Backtrack = q.Backtrack


class AdjustedLogits(q.AdjustedLogits):
    """``AdjustedLogits(logits=None, token_temp=None)``: replace the row and/or set a temperature."""

    def __init__(self, logits: Any = None, token_temp: float | None = None) -> None:
        try:
            row = None if logits is None else as_logits_row(logits)
        except ValueError as exc:
            raise InvalidActionError(f"AdjustedLogits: {exc}") from exc
        super().__init__(logits=row, temperature=None if token_temp is None else float(token_temp))

    @property
    def token_temp(self) -> float | None:
        """The original's name for ``temperature``."""
        return self.temperature


class AdjustedPrefill(q.AdjustedPrefill):
    """``AdjustedPrefill(tokens, max_steps=None)``; ``max_steps`` 0 or ``None`` keeps the cap."""

    def __init__(self, tokens: Iterable[int], max_steps: int | None = None) -> None:
        super().__init__(tuple(tokens), max_steps or None)


def _arguments(name: str, raw: Any) -> Mapping[str, Any] | str:
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            raise InvalidActionError(
                f"ToolCalls: arguments of {name!r} are not valid JSON: {exc}"
            ) from exc
        if not isinstance(parsed, dict):
            raise InvalidActionError(f"ToolCalls: arguments of {name!r} must be a JSON object")
        return raw if raw.strip() else {}
    raise InvalidActionError(
        f"ToolCalls: arguments of {name!r} must be a JSON string or an object, got {raw!r}"
    )


def _one_call(item: Any) -> q.ToolCall:
    if isinstance(item, q.ToolCall):
        return item
    if not isinstance(item, Mapping):
        raise InvalidActionError(f"ToolCalls: not a tool call: {item!r}")
    fn = item.get("function")
    spec = fn if isinstance(fn, Mapping) else item
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidActionError(f"ToolCalls: a tool call needs a function name: {dict(item)!r}")
    call_id = item.get("id")
    return q.ToolCall(
        name=name,
        arguments=_arguments(name, spec.get("arguments", {})),
        id=None if call_id is None else str(call_id),
    )


def parse_tool_calls(payload: Any) -> tuple[q.ToolCall, ...]:
    """Tool calls from the original's payload shapes.

    Accepts one call or a list of calls, each OpenAI-shaped
    (``{"id", "type": "function", "function": {"name", "arguments"}}``) or
    Quote-shaped (``{"name", "arguments", "id"}``), or ``{"tool_calls": [...]}``.
    ``arguments`` may be a JSON string (kept as sent) or an object.

    Raises:
        InvalidActionError: a call without a name, arguments that are not a JSON
            object, or no calls at all.
    """
    if isinstance(payload, Mapping) and "tool_calls" in payload:
        payload = payload["tool_calls"]
    items = [payload] if isinstance(payload, Mapping | q.ToolCall) else payload
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise InvalidActionError(f"ToolCalls: not a tool call payload: {payload!r}")
    calls = tuple(_one_call(item) for item in items)
    if not calls:
        raise InvalidActionError("ToolCalls: at least one call is required")
    return calls


class ToolCalls(q.ToolCalls):
    """``ToolCalls(payload)``: end the request with these calls (see :func:`parse_tool_calls`)."""

    def __init__(self, tool_calls: Any) -> None:
        super().__init__(parse_tool_calls(tool_calls))

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """The calls, OpenAI-shaped (``arguments`` as a JSON string)."""
        return [
            {
                "id": c.id,
                "type": "function",
                "function": {
                    "name": c.name,
                    "arguments": c.arguments
                    if isinstance(c.arguments, str)
                    else json.dumps(c.arguments),
                },
            }
            for c in self.calls
        ]


class EmitError(q.EmitError):
    """``EmitError(err_str)``: end the request with this error."""

    def __init__(self, err_str: str) -> None:
        super().__init__(str(err_str))

    @property
    def err_str(self) -> str:
        """The original's name for ``message``."""
        return self.message


ModAction = q.Action


def to_quote_action(result: Any) -> q.Action:
    """``result`` as one of Quote's exact action classes (``None`` becomes ``Noop``).

    Raises:
        InvalidActionError: ``result`` is not an action.
    """
    if result is None:
        return q.Noop()
    kind = type(result)
    if kind in q.LEGAL_EVENTS:
        return result  # type: ignore[no-any-return]
    for base in kind.__mro__[1:]:
        if base in q.LEGAL_EVENTS and isinstance(result, base):
            values = {f.name: getattr(result, f.name) for f in dataclasses.fields(base)}
            rebuilt: q.Action = base(**values)
            return rebuilt
    raise InvalidActionError(f"the mod returned {kind.__name__}, not an action")
