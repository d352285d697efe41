# SPDX-License-Identifier: Apache-2.0
"""The original engine's ``ActionBuilder``: its method names and arguments, Quote's legality.

Each method builds the action the original's builder built (see
:mod:`quote.sdk.compat.actions`) after checking it against Quote's legality
table. Quote is more permissive in one place: ``force_tokens`` is also legal at
``Prefilled`` (the tokens follow the prompt).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from quote.sdk import actions as q
from quote.sdk import events as qe
from quote.sdk.compat.actions import (
    AdjustedLogits,
    AdjustedPrefill,
    EmitError,
    ToolCalls,
)
from quote.sdk.errors import InvalidActionError

__all__ = ["ActionBuilder", "for_event", "quote_event_type"]


def quote_event_type(kind: type) -> type:
    """The Quote event class ``kind`` is or derives from.

    Raises:
        TypeError: ``kind`` is not an event class.
    """
    for base in kind.__mro__:
        if base in qe.EVENT_NAMES:
            return base
    raise TypeError(f"not an event type: {kind.__name__}")


class ActionBuilder:
    """Factory of actions for one event, with the original's method signatures.

    Example:
        >>> actions.backtrack(steps=2, tokens=[5, 6])  # doctest: +SKIP
    """

    __slots__ = ("_event", "_kind")

    def __init__(self, event: Any) -> None:
        self._event = event
        self._kind = quote_event_type(type(event))

    def _require(self, action_cls: type, method: str) -> None:
        allowed = q.LEGAL_EVENTS[action_cls]
        if self._kind not in allowed:
            legal = ", ".join(sorted(qe.EVENT_NAMES[e] for e in allowed))
            raise InvalidActionError(
                f"Action '{method}' not permitted for event type "
                f"{qe.EVENT_NAMES[self._kind]}; it is legal at: {legal}"
            )

    def noop(self) -> q.Noop:
        """Do nothing (legal everywhere)."""
        return q.Noop()

    def force_output(self, tokens: Iterable[int]) -> q.ForceOutput:
        """End the request with exactly ``tokens`` as its completion."""
        self._require(q.ForceOutput, "force_output")
        return q.ForceOutput(tuple(tokens))

    def tool_calls(self, payload: Any) -> ToolCalls:
        """End the request with tool calls (one OpenAI-shaped dict, a list, or Quote-shaped)."""
        self._require(q.ToolCalls, "tool_calls")
        return ToolCalls(payload)

    def emit_error(self, err_str: str) -> EmitError:
        """End the request with an error."""
        self._require(q.EmitError, "emit_error")
        return EmitError(err_str)

    def adjust_prefill(
        self, tokens: Iterable[int], *, max_steps: int | None = None
    ) -> AdjustedPrefill:
        """Replace the prompt (``Prefilled`` only); ``max_steps`` 0 or ``None`` keeps the cap."""
        self._require(q.AdjustedPrefill, "adjust_prefill")
        return AdjustedPrefill(tokens, max_steps)

    def adjust_logits(
        self,
        logits: Any = None,
        token_temp: float | None = None,
        *,
        allow: Iterable[int] | None = None,
        ban: Iterable[int] | None = None,
        bias: Mapping[int, float] | None = None,
        allow_bitmask: npt.NDArray[np.int32] | None = None,
        temperature: float | None = None,
    ) -> q.AdjustedLogits:
        """Replace this step's row (``(vocab,)``, ``(1, vocab)`` or a tensor) and/or set ``token_temp``.

        Quote's keywords (``allow``, ``ban``, ``bias``, ``allow_bitmask``, and
        ``temperature`` for ``token_temp``) are accepted too; with a sparse edit a
        Quote ``AdjustedLogits`` is returned.
        """
        self._require(q.AdjustedLogits, "adjust_logits")
        if token_temp is not None and temperature is not None:
            raise InvalidActionError("adjust_logits: give token_temp or temperature, not both")
        legacy = AdjustedLogits(logits, token_temp if token_temp is not None else temperature)
        if allow is None and ban is None and bias is None and allow_bitmask is None:
            return legacy
        return q.AdjustedLogits(
            logits=legacy.logits,
            allow=None if allow is None else tuple(allow),
            ban=None if ban is None else tuple(ban),
            bias=bias,
            temperature=legacy.temperature,
            allow_bitmask=allow_bitmask,
        )

    def force_tokens(self, tokens: Iterable[int]) -> q.ForceTokens:
        """Append tokens."""
        self._require(q.ForceTokens, "force_tokens")
        return q.ForceTokens(tuple(tokens))

    def backtrack(
        self, steps: int | None = None, tokens: Iterable[int] | None = None, *, n: int | None = None
    ) -> q.Backtrack:
        """Remove the last ``steps`` generated tokens (Quote's ``n``), then append ``tokens``."""
        self._require(q.Backtrack, "backtrack")
        count = steps if steps is not None else n
        if count is None:
            raise InvalidActionError("backtrack: give the number of tokens to remove (steps=...)")
        return q.Backtrack(count, None if tokens is None else tuple(tokens))


def for_event(event: Any) -> ActionBuilder:
    """An action builder bound to ``event``."""
    return ActionBuilder(event)
